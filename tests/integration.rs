//! The real `deployer` binary against the lab (moto extended so ECS rolls out; see lab/ecs_lab.py).
//!
//! The lab must be running: `lab/up` starts it, `scripts/test` starts it and runs this suite.
//! Every test uses its own cluster, service and image names, so tests share one lab safely.

mod lab;

mod cancel;
mod cli;
mod codedeploy;
mod deploy;
mod faults;
mod github;
mod races;
mod refusals;
mod report;
mod run;
mod shapes;
mod ship;
mod strategies;
mod system;
mod verify;
