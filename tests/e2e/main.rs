//! The end-to-end tests: real Prometheus binaries in network namespaces and in Docker, the whole default suite,
//! the payload snapshots per agent version, the real-target path, and what an interrupted run leaves. Need root,
//! the agents from `ci/setup.sh` and (for Docker) a daemon (`cargo test --test e2e [filter]`).
//!
//! Tests in one binary run in parallel, where these used to be one binary each, run one after another: every test
//! that starts agents first takes its [`agent_turn`], so no more agents run at once than before.

#[path = "../common/mod.rs"]
mod common;

mod artefacts;
mod docker;
mod interrupt;
mod netns;
mod own_agents;
mod parallel_reports;
mod payload_snapshots;
mod real_agents;
mod real_target;
mod report_page;
mod security;

use std::sync::LazyLock;

use tokio::sync::{Semaphore, SemaphorePermit};

/// Agents that may run at once across the binary: azrw's own default `--jobs` (4 per core), which the suites
/// also run at. Cases mostly wait on their agents, so this is what the machine holds without a verdict moving.
pub fn agent_slots() -> u32 {
    azrw::runner::default_jobs() as u32
}

static AGENTS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(agent_slots() as usize));

/// Waits until `agents` more agents (containers included) may run, and holds their slots until dropped. A test
/// that starts agents calls this first — before any deadline of its own starts.
pub async fn agent_turn(agents: u32) -> SemaphorePermit<'static> {
    let slots = agent_slots();
    assert!(agents <= slots, "asking for {agents} of {slots} agent slots would never be granted");
    AGENTS.acquire_many(agents).await.expect("the agent semaphore is never closed")
}

/// [`agent_turn`] for a test without a runtime (one that drives the `azrw` binary).
pub fn agent_turn_blocking(agents: u32) -> SemaphorePermit<'static> {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("a current-thread runtime");
    rt.block_on(agent_turn(agents))
}

#[tokio::test]
async fn a_turn_of_every_slot_leaves_none_to_anyone_else() {
    let all = agent_turn(agent_slots()).await;
    assert!(AGENTS.try_acquire().is_err(), "a slot was free while every slot was taken");
    drop(all);
}
