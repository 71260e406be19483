//! Task resources → stages, in-process: what Lambda does for a deployed state machine.

use async_trait::async_trait;
use serde_json::Value;
use zdsync::stages::{Stage, StageContext};

use crate::asl::{ExecError, TaskInvoker};

pub struct InProcessStages {
    ctx: StageContext,
}

impl InProcessStages {
    pub fn new(ctx: StageContext) -> InProcessStages {
        InProcessStages { ctx }
    }
}

#[async_trait]
impl TaskInvoker for InProcessStages {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, ExecError> {
        let stage = Stage::from_function(resource).ok_or_else(|| {
            ExecError::new(
                "Lambda.ResourceNotFoundException",
                format!("no zdsync stage is deployed as {resource}"),
            )
        })?;
        // The stage error's stable name becomes the Step Functions error, as with Lambda.
        zdsync::stages::run(stage, &self.ctx, input)
            .await
            .map_err(|e| ExecError::new(e.name(), e.to_string()))
    }
}
