//! The service events a watch prints: those new since it began, oldest first, each once.

use super::Watcher;
use crate::report::output::Output;
use aws_sdk_ecs::types::Service;
use std::time::SystemTime;

impl Watcher {
    /// Prints the service events that are new since the watch began, oldest first.
    pub(super) fn print_events(&mut self, service: &Service, out: &Output) {
        let mut fresh: Vec<(aws_sdk_ecs::primitives::DateTime, String, String)> = Vec::new();
        for event in service.events() {
            let id = event.id().unwrap_or_default().to_string();
            let Some(at) = event.created_at() else {
                continue;
            };
            let after_start = self
                .since
                .is_none_or(|since| SystemTime::try_from(*at).is_ok_and(|t| t >= since));
            if after_start && self.seen_events.insert(id.clone()) {
                fresh.push((*at, id, event.message().unwrap_or_default().to_string()));
            }
        }
        fresh.sort_by(|a, b| {
            a.0.secs()
                .cmp(&b.0.secs())
                .then(a.0.subsec_nanos().cmp(&b.0.subsec_nanos()))
        });
        for (at, _, message) in fresh {
            let at = at
                .fmt(aws_sdk_ecs::primitives::DateTimeFormat::DateTime)
                .unwrap_or_default();
            out.service_event(&at, &message);
            self.events.push((at, message));
        }
    }
}
