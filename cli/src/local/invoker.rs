//! Task resources → stages, in-process: what Lambda does for a deployed state machine.

use async_trait::async_trait;
use serde_json::Value;
use zdsync::model::{Instance, SyncKind};
use zdsync::stages::{Stage, StageContext};
use zdsync_sandbox::{CrashSwitch, ZendeskInstance};

use crate::asl::{ExecError, TaskInvoker};

pub struct InProcessStages {
    ctx: StageContext,
    crash: Option<(CrashPlan, CrashSwitch)>,
}

/// A deterministic crash, for tests of crash and redrive: the invocation of `stage` for `sync`
/// dies after its `after_writes`-th Zendesk write, as a Lambda whose process exits (Step
/// Functions sees `Runtime.ExitError` and the execution fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashPlan {
    pub stage: Stage,
    pub sync: SyncKind,
    pub after_writes: u64,
}

/// What Lambda reports for a function whose process exited mid-invocation.
pub const CRASH_ERROR: &str = "Runtime.ExitError";

impl InProcessStages {
    pub fn new(ctx: StageContext) -> InProcessStages {
        InProcessStages { ctx, crash: None }
    }

    /// Crashes the first invocation `plan` names; `switch` is the sandbox's.
    pub fn crashing(mut self, plan: CrashPlan, switch: CrashSwitch) -> InProcessStages {
        self.crash = Some((plan, switch));
        self
    }

    fn crash_for(&self, stage: Stage, input: &Value) -> Option<(&CrashPlan, &CrashSwitch)> {
        let (plan, switch) = self.crash.as_ref()?;
        plan.matches(stage, input).then_some((plan, switch))
    }
}

impl CrashPlan {
    /// Whether an invocation of `stage` with `input` is the one to crash.
    pub fn matches(&self, stage: Stage, input: &Value) -> bool {
        let sync = input
            .get("sync")
            .and_then(|s| serde_json::from_value::<SyncKind>(s.clone()).ok())
            .or_else(|| {
                input
                    .get("instance")
                    .and_then(|i| serde_json::from_value::<Instance>(i.clone()).ok())
                    .map(SyncKind::orgs)
            });
        self.stage == stage && sync == Some(self.sync)
    }

    /// The sandbox instance whose writes the crash counts.
    pub fn instance(&self) -> ZendeskInstance {
        match self.sync.instance() {
            Instance::Global => ZendeskInstance::Global,
            Instance::Usgov => ZendeskInstance::Usgov,
        }
    }

    pub fn message(&self) -> String {
        format!(
            "the {} function for {} crashed after its Zendesk write {} (crash hook)",
            self.stage, self.sync, self.after_writes
        )
    }
}

/// The stage a Task's resource names, or Lambda's answer for a function that is not there.
pub fn deployed_stage(resource: &str) -> Result<Stage, ExecError> {
    Stage::from_function(resource).ok_or_else(|| {
        ExecError::new(
            "Lambda.ResourceNotFoundException",
            format!("no zdsync stage is deployed as {resource}"),
        )
    })
}

#[async_trait]
impl TaskInvoker for InProcessStages {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, ExecError> {
        let stage = deployed_stage(resource)?;
        let run = async {
            // The stage error's stable name becomes the Step Functions error, as with Lambda.
            zdsync::stages::run(stage, &self.ctx, input.clone())
                .await
                .map_err(|e| ExecError::new(e.name(), e.to_string()))
        };
        let Some((plan, switch)) = self.crash_for(stage, &input) else {
            return run.await;
        };
        switch.arm(plan.instance(), plan.after_writes);
        let outcome = tokio::select! {
            result = run => result,
            () = switch.crashed() => Err(ExecError::new(CRASH_ERROR, plan.message())),
        };
        switch.disarm();
        outcome
    }
}
