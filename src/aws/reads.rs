//! The reads of every watch in a run, shared per cluster: what several services ask at about the
//! same time goes as one call (DescribeServices takes 10 services, DescribeTasks 100 tasks, one
//! ListTasks of the whole cluster answers several services, DescribeSubnets 200 subnets,
//! DescribeTargetGroups 20 target groups), each call paced by `pace`.
//!
//! A request joins its cluster's queue; the first one starts a sender, which waits for `pace`,
//! takes everything queued by then and makes the calls. Alone, a request goes at once; when many
//! services look at once, the wait for the pace is what gathers them into one call.

use crate::aws::pace::{self, Group};
use crate::findings::{Seen, TargetGroup};
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

static TARGET_GROUPS: LazyLock<
    Queue<aws_sdk_elasticloadbalancingv2::Client, Vec<String>, Seen<Vec<TargetGroup>>>,
> = LazyLock::new(|| {
    Queue::new(Group::ElbDescribes, |e, _, w| {
        Box::pin(send_target_groups(e, w))
    })
});

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

/// DescribeTargetGroups of these target groups, in one call with the groups other services ask
/// for at about the same time. Found holds the groups ELB knows: one it does not know is left out
/// (and does not fail the others, in this request or beside it).
pub(crate) async fn target_groups(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    arns: &[String],
) -> Seen<Vec<TargetGroup>> {
    TARGET_GROUPS
        .ask(elb, "", arns.to_vec())
        .await
        .unwrap_or_else(|err| Seen::Failed(format!("{err:#}")))
}

async fn send_target_groups(
    elb: aws_sdk_elasticloadbalancingv2::Client,
    waiting: Waiting<Vec<String>, Seen<Vec<TargetGroup>>>,
) {
    let mut lookup = Lookup::new(distinct(
        waiting.iter().flat_map(|(a, _)| a.iter().cloned()),
    ));
    let mut first = true;
    while let Some(batch) = lookup.next() {
        if !std::mem::take(&mut first) {
            pace::call(Group::ElbDescribes).await;
        }
        let said = describe_target_groups(&elb, &batch).await;
        lookup.said(batch, said);
    }
    for (asked, reply) in waiting {
        let _ = reply.send(Ok(lookup.answer(&asked)));
    }
}

/// One DescribeTargetGroups call (at most 20 ARNs): the groups, or TargetGroupNotFound (Missing)
/// when ELB does not know one of them, or why not.
async fn describe_target_groups(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    arns: &[String],
) -> Seen<Vec<TargetGroup>> {
    match elb
        .describe_target_groups()
        .set_target_group_arns(Some(arns.to_vec()))
        .send()
        .await
    {
        Ok(out) => Seen::Found(
            out.target_groups()
                .iter()
                .map(|g| TargetGroup {
                    arn: g.target_group_arn().unwrap_or_default().to_string(),
                    target_type: g
                        .target_type()
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default(),
                    protocol: g.protocol().map(|p| p.as_str().to_string()),
                })
                .collect(),
        ),
        Err(err) => crate::aws::iam::seen(
            err,
            &["TargetGroupNotFound"],
            "elasticloadbalancing:DescribeTargetGroups",
        ),
    }
}

/// Pure: the DescribeTargetGroups calls that describe a set of target groups, and what each
/// request gets back. 20 ARNs a call (ELB refuses more: "You cannot describe more than '20' target
/// groups at a time"). ELB answers a call naming one target group it does not know with
/// TargetGroupNotFound for the whole call, without saying which: such a call is asked again in
/// two halves, down to the one ARN it does not know (one unknown ARN among 20 costs at most 10
/// more calls, where a call per ARN would take 20).
pub(crate) struct Lookup {
    /// Calls still to make, the next one last.
    todo: Vec<Vec<String>>,
    /// What ELB said of each target group.
    seen: HashMap<String, Seen<TargetGroup>>,
}

impl Lookup {
    pub(crate) fn new(arns: Vec<String>) -> Lookup {
        let mut todo: Vec<Vec<String>> = arns.chunks(20).map(<[String]>::to_vec).collect();
        todo.reverse();
        Lookup {
            todo,
            seen: HashMap::new(),
        }
    }

    /// The next call's ARNs.
    pub(crate) fn next(&mut self) -> Option<Vec<String>> {
        self.todo.pop()
    }

    /// What ELB answered to the call of `batch`.
    pub(crate) fn said(&mut self, batch: Vec<String>, said: Seen<Vec<TargetGroup>>) {
        match said {
            Seen::Found(groups) => {
                for arn in batch {
                    let found = groups.iter().find(|g| g.arn == arn).cloned();
                    self.seen
                        .insert(arn, found.map_or(Seen::Missing, Seen::Found));
                }
            }
            Seen::Missing if batch.len() > 1 => {
                let mut first = batch;
                let second = first.split_off(first.len() / 2);
                self.todo.push(second);
                self.todo.push(first);
            }
            other => {
                for arn in batch {
                    let each = match &other {
                        Seen::Denied(permission) => Seen::Denied(permission),
                        Seen::Failed(why) => Seen::Failed(why.clone()),
                        _ => Seen::Missing,
                    };
                    self.seen.insert(arn, each);
                }
            }
        }
    }

    /// What one request gets: IAM's denial or the error when a call of one of its ARNs failed,
    /// else the groups ELB knows of those it asked for (an unknown one left out).
    pub(crate) fn answer(&self, asked: &[String]) -> Seen<Vec<TargetGroup>> {
        let seen: Vec<&Seen<TargetGroup>> = asked.iter().filter_map(|a| self.seen.get(a)).collect();
        let mut groups = Vec::new();
        let mut failed = None;
        for s in seen {
            match s {
                Seen::Denied(permission) => return Seen::Denied(permission),
                Seen::Failed(why) => failed = failed.or(Some(why.clone())),
                Seen::Found(group) => groups.push(group.clone()),
                Seen::Missing => {}
            }
        }
        failed.map_or(Seen::Found(groups), Seen::Failed)
    }
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

    fn group(arn: &str) -> TargetGroup {
        TargetGroup {
            arn: arn.to_string(),
            target_type: "ip".into(),
            protocol: Some("HTTP".into()),
        }
    }

    /// The calls a lookup of `asked` (one request per entry) makes against an ELB that knows
    /// `known` (TargetGroupNotFound for a call naming any other) and denies calls naming `denied`;
    /// what each request got back.
    fn look_up(
        asked: &[&[&str]],
        known: &[&str],
        denied: &str,
    ) -> (Vec<Vec<String>>, Vec<Seen<Vec<TargetGroup>>>) {
        let requests: Vec<Vec<String>> = asked
            .iter()
            .map(|r| r.iter().map(|a| a.to_string()).collect())
            .collect();
        let mut lookup = Lookup::new(distinct(requests.iter().flatten().cloned()));
        let mut calls = Vec::new();
        while let Some(batch) = lookup.next() {
            assert!(batch.len() <= 20, "ELB describes 20 a call: {batch:?}");
            let said = if batch.iter().any(|a| a == denied) {
                Seen::Denied("elasticloadbalancing:DescribeTargetGroups")
            } else if batch.iter().all(|a| known.contains(&a.as_str())) {
                Seen::Found(batch.iter().map(|a| group(a)).collect())
            } else {
                Seen::Missing
            };
            calls.push(batch.clone());
            lookup.said(batch, said);
        }
        (calls, requests.iter().map(|r| lookup.answer(r)).collect())
    }

    fn found(arns: &[&str]) -> Seen<Vec<TargetGroup>> {
        Seen::Found(arns.iter().map(|a| group(a)).collect())
    }

    #[test]
    fn target_groups_asked_together_go_in_one_call_and_each_gets_its_own() {
        let (calls, answers) = look_up(&[&["a"], &["b", "c"], &["a"]], &["a", "b", "c"], "");
        assert_eq!(calls, vec![vec!["a", "b", "c"]]);
        assert_eq!(
            answers,
            vec![found(&["a"]), found(&["b", "c"]), found(&["a"])]
        );
    }

    #[test]
    fn an_unknown_target_group_is_left_out_of_its_request_and_fails_no_other() {
        // ELB fails the whole call; the halves find the one it does not know.
        let (calls, answers) = look_up(&[&["a"], &["gone", "c"], &["d"]], &["a", "c", "d"], "");
        assert_eq!(
            calls,
            vec![
                vec!["a", "gone", "c", "d"],
                vec!["a", "gone"],
                vec!["a"],
                vec!["gone"],
                vec!["c", "d"],
            ]
        );
        assert_eq!(answers, vec![found(&["a"]), found(&["c"]), found(&["d"])]);
    }

    #[test]
    fn twenty_services_and_one_unknown_target_group_cost_at_most_eleven_calls() {
        let names: Vec<String> = (0..20).map(|i| format!("tg{i}")).collect();
        let asked: Vec<[&str; 1]> = names.iter().map(|n| [n.as_str()]).collect();
        let asked: Vec<&[&str]> = asked.iter().map(|a| &a[..]).collect();
        for gone in 0..20 {
            let known: Vec<&str> = (0..20)
                .filter(|n| *n != gone)
                .map(|n| names[n].as_str())
                .collect();
            let (calls, answers) = look_up(&asked, &known, "");
            assert!(calls.len() <= 11, "tg{gone} unknown: {calls:?}");
            for (n, answer) in answers.iter().enumerate() {
                let own: &[&str] = if n == gone { &[] } else { &[&names[n]] };
                assert_eq!(*answer, found(own), "tg{gone} unknown, request {n}");
            }
        }
    }

    #[test]
    fn more_than_twenty_target_groups_take_a_call_per_twenty() {
        let names: Vec<String> = (0..45).map(|i| format!("tg{i}")).collect();
        let all: Vec<&str> = names.iter().map(String::as_str).collect();
        let (calls, answers) = look_up(&[&all], &all, "");
        assert_eq!(
            calls.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![20, 20, 5]
        );
        assert_eq!(answers, vec![found(&all)]);
    }

    #[test]
    fn a_denied_call_is_denied_to_the_requests_it_carried() {
        let names: Vec<String> = (0..21).map(|i| format!("tg{i}")).collect();
        let mut asked: Vec<Vec<&str>> = names.iter().take(20).map(|n| vec![n.as_str()]).collect();
        asked.push(vec!["tg20"]);
        let asked: Vec<&[&str]> = asked.iter().map(Vec::as_slice).collect();
        let all: Vec<&str> = names.iter().map(String::as_str).collect();
        let (calls, answers) = look_up(&asked, &all, "tg3");
        assert_eq!(calls.len(), 2, "a denial is not split: {calls:?}");
        assert_eq!(
            answers[0],
            Seen::Denied("elasticloadbalancing:DescribeTargetGroups")
        );
        assert_eq!(answers[20], found(&["tg20"]), "the second call's request");
    }

    #[test]
    fn a_failed_call_is_the_error_of_its_requests() {
        let mut lookup = Lookup::new(vec!["a".into(), "b".into()]);
        let batch = lookup.next().expect("one call");
        lookup.said(batch, Seen::Failed("timed out".into()));
        assert_eq!(lookup.next(), None, "an error is not split");
        assert_eq!(
            lookup.answer(&["b".into()]),
            Seen::Failed("timed out".into())
        );
    }

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
