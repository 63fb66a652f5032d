//! CloudWatch Logs reads: a container's awslogs stream (`prefix/container/taskId`), its last lines
//! for a failure report, or the lines since the last read while a one-off task runs.

use crate::aws::Aws;
use crate::task_definition::TaskDefinition;
use anyhow::{Result, bail};

/// Where a container of a task writes: its log group, stream and region.
pub(crate) struct Stream {
    group: String,
    name: String,
    region: Option<String>,
}

impl Stream {
    /// The container's awslogs stream in this task; Err says why there is none.
    pub(crate) fn of(td: &TaskDefinition, container: &str, task_id: &str) -> Result<Stream> {
        let Some(logs) = td.awslogs(container) else {
            bail!("container `{container}` has no awslogs log configuration; no log lines");
        };
        let Some(prefix) = logs.stream_prefix.as_deref() else {
            bail!(
                "{} has no awslogs-stream-prefix, so the task's stream name is unknown",
                logs.group
            );
        };
        Ok(Stream {
            name: format!("{prefix}/{container}/{task_id}"),
            group: logs.group.clone(),
            region: logs.region.clone(),
        })
    }

    pub(crate) fn describe(&self) -> String {
        format!("{} {}", self.group, self.name)
    }
}

/// The last `limit` lines a container wrote, and where they come from (or why there are none).
pub(crate) async fn tail(
    aws: &Aws,
    td: &TaskDefinition,
    container: &str,
    task_id: &str,
    limit: i32,
) -> (Vec<String>, Option<String>) {
    let stream = match Stream::of(td, container, task_id) {
        Ok(stream) => stream,
        Err(why) => return (Vec::new(), Some(why.to_string())),
    };
    let source = stream.describe();
    let result = aws
        .logs(stream.region.as_deref())
        .get_log_events()
        .log_group_name(&stream.group)
        .log_stream_name(&stream.name)
        .limit(limit)
        .start_from_head(false)
        .send()
        .await;
    match result {
        Ok(out) => {
            let lines: Vec<String> = out
                .events()
                .iter()
                .filter_map(|e| e.message().map(|m| m.trim_end().to_string()))
                .collect();
            (lines, Some(source))
        }
        Err(err) => (
            Vec::new(),
            Some(format!(
                "{source}: could not read: {}",
                aws_sdk_cloudwatchlogs::error::DisplayErrorContext(err)
            )),
        ),
    }
}

/// The lines written since `token` (from the start when None), and the token for the next read.
/// None when the stream does not exist yet (it appears once the container writes).
pub(crate) async fn since(
    aws: &Aws,
    stream: &Stream,
    token: Option<&str>,
) -> Option<(Vec<String>, Option<String>)> {
    let mut request = aws
        .logs(stream.region.as_deref())
        .get_log_events()
        .log_group_name(&stream.group)
        .log_stream_name(&stream.name)
        .start_from_head(true);
    if let Some(token) = token {
        request = request.next_token(token);
    }
    let page = request.send().await.ok()?;
    let lines = page
        .events()
        .iter()
        .filter_map(|e| e.message().map(|m| m.trim_end().to_string()))
        .collect();
    Some((lines, page.next_forward_token().map(String::from)))
}

/// Whether the log group exists (DescribeLogGroups by prefix, the exact name among them).
pub(crate) async fn group_exists(
    aws: &Aws,
    group: &str,
    region: Option<&str>,
) -> crate::findings::Seen<()> {
    use crate::findings::Seen;
    let result = aws
        .logs(region)
        .describe_log_groups()
        .log_group_name_prefix(group)
        .send()
        .await;
    match result {
        Ok(out)
            if out
                .log_groups()
                .iter()
                .any(|g| g.log_group_name() == Some(group)) =>
        {
            Seen::Found(())
        }
        Ok(_) => Seen::Missing,
        Err(err) => crate::aws::iam::seen(
            err,
            &["ResourceNotFoundException"],
            "logs:DescribeLogGroups",
        ),
    }
}
