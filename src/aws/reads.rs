//! The reads of every watch in a run, shared per cluster: what several services ask at about the
//! same time goes as one call (DescribeServices takes 10 services, DescribeTasks 100 tasks, one
//! ListTasks of the whole cluster answers several services, DescribeSubnets 200 subnets), each call
//! paced by `pace`.
//!
//! A request joins its cluster's queue; the first one starts a sender, which waits for `pace`,
//! takes everything queued by then and makes the calls. Alone, a request goes at once; when many
//! services look at once, the wait for the pace is what gathers them into one call.

use crate::aws::pace::{self, Group};
use anyhow::{Result, anyhow};
use aws_sdk_ecs::Client;
use aws_sdk_ecs::error::DisplayErrorContext;
use aws_sdk_ecs::types::{DesiredStatus, Service, Task};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{LazyLock, Mutex};
use tokio::sync::oneshot;

/// A service, or None with ECS's reason (MISSING) when the cluster has no such service.
pub(crate) type Found = std::result::Result<Service, Option<String>>;

type Answer<T> = std::result::Result<T, String>;
type Waiting<Q, T> = Vec<(Q, oneshot::Sender<Answer<T>>)>;
type Sender<C, Q, T> = fn(C, String, Waiting<Q, T>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// A cluster's queued requests, and whether a sender is already on its way.
type Pending<Q, T> = (Waiting<Q, T>, bool);

/// Requests waiting for the next call, per cluster, and whether a sender is at work on them.
struct Queue<C, Q, T> {
    group: Group,
    send: Sender<C, Q, T>,
    clusters: Mutex<HashMap<String, Pending<Q, T>>>,
}

impl<C: Clone + Send + Sync + 'static, Q: Send + 'static, T: Send + 'static> Queue<C, Q, T> {
    fn new(group: Group, send: Sender<C, Q, T>) -> Self {
        Queue {
            group,
            send,
            clusters: Mutex::new(HashMap::new()),
        }
    }

    async fn ask(&'static self, client: &C, cluster: &str, request: Q) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut clusters = self
                .clusters
                .lock()
                .expect("no sender panics holding a queue");
            let (waiting, sending) = clusters.entry(cluster.to_string()).or_default();
            waiting.push((request, reply));
            !std::mem::replace(sending, true)
        };
        if start {
            tokio::spawn(self.sender(client.clone(), cluster.to_string()));
        }
        answer
            .await
            .map_err(|_| anyhow!("the read was dropped before ECS answered"))?
            .map_err(|message| anyhow!(message))
    }

    async fn sender(&'static self, client: C, cluster: String) {
        loop {
            {
                let mut clusters = self
                    .clusters
                    .lock()
                    .expect("no sender panics holding a queue");
                let (waiting, sending) = clusters.entry(cluster.clone()).or_default();
                if waiting.is_empty() {
                    *sending = false;
                    return;
                }
            }
            pace::call(self.group).await;
            let batch = {
                let mut clusters = self
                    .clusters
                    .lock()
                    .expect("no sender panics holding a queue");
                std::mem::take(&mut clusters.entry(cluster.clone()).or_default().0)
            };
            (self.send)(client.clone(), cluster.clone(), batch).await;
        }
    }
}

static SERVICES: LazyLock<Queue<Client, String, Found>> = LazyLock::new(|| {
    Queue::new(Group::EcsServiceReads, |e, c, w| {
        Box::pin(send_services(e, c, w))
    })
});
static TASKS: LazyLock<Queue<Client, Vec<String>, Vec<Task>>> =
    LazyLock::new(|| Queue::new(Group::EcsTaskReads, |e, c, w| Box::pin(send_tasks(e, c, w))));
static RUNNING: LazyLock<Queue<Client, String, Vec<String>>> =
    LazyLock::new(|| Queue::new(Group::EcsTaskReads, |e, c, w| Box::pin(send_lists(e, c, w))));

static SUBNETS: LazyLock<Queue<aws_sdk_ec2::Client, Vec<String>, Zones>> =
    LazyLock::new(|| Queue::new(Group::Ec2Describes, |e, _, w| Box::pin(send_subnets(e, w))));

/// Subnet → availability zone.
pub(crate) type Zones = HashMap<String, String>;

/// Each task's group (`service:NAME`) as DescribeTasks said, so a listing of the whole cluster can
/// be shared out without describing a task twice.
static GROUPS: LazyLock<Mutex<HashMap<String, String>>> = LazyLock::new(Default::default);
/// How many pages the last ListTasks of each whole cluster took.
static PAGES: LazyLock<Mutex<HashMap<String, usize>>> = LazyLock::new(Default::default);

/// DescribeServices for one service, in one call with whatever else is asked of the cluster.
pub(crate) async fn service(ecs: &Client, cluster: &str, service: &str) -> Result<Found> {
    SERVICES.ask(ecs, cluster, service.to_string()).await
}

/// DescribeTasks for these tasks (any number); tasks ECS no longer knows are left out.
pub(crate) async fn tasks(ecs: &Client, cluster: &str, arns: &[String]) -> Result<Vec<Task>> {
    let mut tasks = Vec::new();
    for chunk in arns.chunks(100) {
        tasks.extend(TASKS.ask(ecs, cluster, chunk.to_vec()).await?);
    }
    Ok(tasks)
}

/// ListTasks of one service. RUNNING listings asked by several services at once may be answered
/// by one listing of the whole cluster, when that takes fewer calls.
pub(crate) async fn task_arns(
    ecs: &Client,
    cluster: &str,
    service: &str,
    status: DesiredStatus,
) -> Result<Vec<String>> {
    if status == DesiredStatus::Running {
        return RUNNING.ask(ecs, cluster, service.to_string()).await;
    }
    pace::call(Group::EcsTaskReads).await;
    list(ecs, cluster, Some(service), status)
        .await
        .map(|(arns, _)| arns)
        .map_err(|message| anyhow!(message))
}

/// The zone of each of these subnets (a subnet's zone never changes: each is described once a
/// run, and subnets asked by several services at once go in one DescribeSubnets).
pub(crate) async fn zones(ec2: &aws_sdk_ec2::Client, subnets: &[String]) -> Result<Zones> {
    static KNOWN: LazyLock<Mutex<Zones>> = LazyLock::new(Default::default);
    let unknown: Vec<String> = {
        let known = KNOWN.lock().expect("no thread panics holding the zones");
        subnets
            .iter()
            .filter(|s| !known.contains_key(*s))
            .cloned()
            .collect()
    };
    if !unknown.is_empty() {
        let learnt = SUBNETS.ask(ec2, "", unknown).await?;
        KNOWN
            .lock()
            .expect("no thread panics holding the zones")
            .extend(learnt);
    }
    let known = KNOWN.lock().expect("no thread panics holding the zones");
    Ok(subnets
        .iter()
        .filter_map(|s| Some((s.clone(), known.get(s)?.clone())))
        .collect())
}

async fn send_subnets(ec2: aws_sdk_ec2::Client, waiting: Waiting<Vec<String>, Zones>) {
    let subnets = distinct(waiting.iter().flat_map(|(s, _)| s.iter().cloned()));
    let mut found = Zones::new();
    let mut failed: Option<String> = None;
    for (n, chunk) in subnets.chunks(200).enumerate() {
        if n > 0 {
            pace::call(Group::Ec2Describes).await;
        }
        match ec2
            .describe_subnets()
            .set_subnet_ids(Some(chunk.to_vec()))
            .send()
            .await
        {
            Ok(out) => found.extend(out.subnets().iter().filter_map(|s| {
                Some((
                    s.subnet_id()?.to_string(),
                    s.availability_zone()?.to_string(),
                ))
            })),
            Err(err) => failed = Some(aws_sdk_ec2::error::DisplayErrorContext(&err).to_string()),
        }
    }
    answer_each(waiting, failed, |asked| {
        asked
            .iter()
            .filter_map(|s| Some((s.clone(), found.get(s)?.clone())))
            .collect()
    });
}

fn pick(
    out: &aws_sdk_ecs::operation::describe_services::DescribeServicesOutput,
    key: &str,
) -> Found {
    if let Some(service) = out
        .services()
        .iter()
        .find(|s| s.service_name() == Some(key) || s.service_arn() == Some(key))
    {
        return Ok(service.clone());
    }
    Err(out
        .failures()
        .iter()
        .find(|f| {
            f.arn()
                .is_some_and(|arn| arn == key || arn.ends_with(&format!("/{key}")))
        })
        .and_then(|f| f.reason())
        .map(String::from))
}

async fn send_services(ecs: Client, cluster: String, waiting: Waiting<String, Found>) {
    let names = distinct(waiting.iter().map(|(name, _)| name.clone()));
    let mut answers: HashMap<String, Answer<Found>> = HashMap::new();
    for (n, chunk) in names.chunks(10).enumerate() {
        if n > 0 {
            pace::call(Group::EcsServiceReads).await;
        }
        let sent = ecs
            .describe_services()
            .cluster(&cluster)
            .set_services(Some(chunk.to_vec()))
            .send()
            .await;
        for name in chunk {
            let answer = match &sent {
                Ok(out) => Ok(pick(out, name)),
                Err(err) => Err(DisplayErrorContext(err).to_string()),
            };
            answers.insert(name.clone(), answer);
        }
    }
    for (name, reply) in waiting {
        let _ = reply.send(answers[&name].clone());
    }
}

async fn send_tasks(ecs: Client, cluster: String, waiting: Waiting<Vec<String>, Vec<Task>>) {
    let arns = distinct(waiting.iter().flat_map(|(arns, _)| arns.iter().cloned()));
    let mut found: HashMap<String, Task> = HashMap::new();
    let mut failed: Option<String> = None;
    for (n, chunk) in arns.chunks(100).enumerate() {
        if n > 0 {
            pace::call(Group::EcsTaskReads).await;
        }
        match ecs
            .describe_tasks()
            .cluster(&cluster)
            .set_tasks(Some(chunk.to_vec()))
            .send()
            .await
        {
            Ok(out) => {
                let mut groups = GROUPS.lock().expect("no thread panics holding the groups");
                for task in out.tasks() {
                    let arn = task.task_arn().unwrap_or_default().to_string();
                    groups.insert(arn.clone(), task.group().unwrap_or_default().to_string());
                    found.insert(arn, task.clone());
                }
            }
            Err(err) => failed = Some(DisplayErrorContext(&err).to_string()),
        }
    }
    answer_each(waiting, failed, |asked| {
        asked.iter().filter_map(|a| found.get(a).cloned()).collect()
    });
}

/// Answers every waiting request: with ECS's error when one of the calls failed, else with `answer`.
fn answer_each<Q, T>(waiting: Waiting<Q, T>, failed: Option<String>, answer: impl Fn(&Q) -> T) {
    for (asked, reply) in waiting {
        let _ = reply.send(match &failed {
            Some(message) => Err(message.clone()),
            None => Ok(answer(&asked)),
        });
    }
}

async fn send_lists(ecs: Client, cluster: String, waiting: Waiting<String, Vec<String>>) {
    let names = distinct(waiting.iter().map(|(name, _)| name.clone()));
    let pages = PAGES
        .lock()
        .expect("no thread panics holding the pages")
        .get(&cluster)
        .copied()
        .unwrap_or(1);
    let mut answers: HashMap<String, Answer<Vec<String>>> = HashMap::new();
    if whole_cluster_is_cheaper(names.len(), pages) {
        let shared = list_whole_cluster(&ecs, &cluster).await;
        for name in &names {
            let group = format!("service:{}", name.rsplit('/').next().unwrap_or(name));
            let answer = shared.as_ref().map_err(Clone::clone).map(|(arns, groups)| {
                arns.iter()
                    .filter(|a| groups.get(*a) == Some(&group))
                    .cloned()
                    .collect()
            });
            answers.insert(name.clone(), answer);
        }
    } else {
        for (n, name) in names.iter().enumerate() {
            if n > 0 {
                pace::call(Group::EcsTaskReads).await;
            }
            let listed = list(&ecs, &cluster, Some(name), DesiredStatus::Running).await;
            answers.insert(name.clone(), listed.map(|(arns, _)| arns));
        }
    }
    for (name, reply) in waiting {
        let _ = reply.send(answers[&name].clone());
    }
}

/// Pure: one listing of the whole cluster (`pages` calls, as last time) answers `services`
/// listings when it takes fewer calls than they would.
pub(crate) fn whole_cluster_is_cheaper(services: usize, pages: usize) -> bool {
    services >= 2 && pages < services
}

/// Every RUNNING task of the cluster, with each one's group (tasks not seen before are described).
async fn list_whole_cluster(
    ecs: &Client,
    cluster: &str,
) -> Answer<(Vec<String>, HashMap<String, String>)> {
    let (arns, pages) = list(ecs, cluster, None, DesiredStatus::Running).await?;
    PAGES
        .lock()
        .expect("no thread panics holding the pages")
        .insert(cluster.to_string(), pages);
    let unknown: Vec<String> = {
        let groups = GROUPS.lock().expect("no thread panics holding the groups");
        arns.iter()
            .filter(|a| !groups.contains_key(*a))
            .cloned()
            .collect()
    };
    if !unknown.is_empty() {
        tasks(ecs, cluster, &unknown)
            .await
            .map_err(|err| format!("{err:#}"))?;
    }
    let groups = GROUPS.lock().expect("no thread panics holding the groups");
    let of: HashMap<String, String> = arns
        .iter()
        .filter_map(|a| groups.get(a).map(|g| (a.clone(), g.clone())))
        .collect();
    Ok((arns, of))
}

/// ListTasks, every page (each page after the first waits for the pace); also how many pages.
async fn list(
    ecs: &Client,
    cluster: &str,
    service: Option<&str>,
    status: DesiredStatus,
) -> Answer<(Vec<String>, usize)> {
    let mut arns = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        if pages > 0 {
            pace::call(Group::EcsTaskReads).await;
        }
        let page = ecs
            .list_tasks()
            .cluster(cluster)
            .set_service_name(service.map(String::from))
            .desired_status(status.clone())
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|err| DisplayErrorContext(&err).to_string())?;
        pages += 1;
        arns.extend(page.task_arns().iter().cloned());
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => return Ok((arns, pages)),
        }
    }
}

fn distinct(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    items.filter(|item| seen.insert(item.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_listing_of_the_cluster_only_when_it_saves_calls() {
        for (services, pages, cheaper) in [
            (1, 1, false), // one service lists itself
            (2, 1, true),
            (20, 1, true),
            (3, 3, false), // a cluster of 300 tasks costs as much as three listings
            (4, 3, true),
        ] {
            assert_eq!(
                whole_cluster_is_cheaper(services, pages),
                cheaper,
                "{services} services, {pages} pages"
            );
        }
    }
}
