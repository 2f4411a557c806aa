//! Operators' commands (`cooper setup`, `cooper token`) run the admin use cases as the AWS
//! principal whose credentials they hold: every change they make is written with its audit
//! record, as the admin API's are.

use std::sync::Arc;

use aws_config::SdkConfig;
use cooper_api::settings::Settings;
use cooper_core::admin::{Admin, AdminContext};
use cooper_core::audit::RequestMeta;
use cooper_core::ports::UpstreamError;

/// The admin use cases, and who runs them.
pub struct Operator {
    pub admin: Arc<Admin>,
    principal: String,
}

impl Operator {
    pub async fn new(sdk: &SdkConfig, settings: &Settings) -> Result<Self, UpstreamError> {
        Ok(Self {
            admin: cooper_api::state::operator_admin(sdk, settings),
            principal: cooper_aws::sts::caller_arn(sdk).await?,
        })
    }

    /// A context for one change: each change is its own request, with its own audit record.
    pub fn context(&self) -> AdminContext {
        let meta = RequestMeta {
            request_id: format!("cli-{}", uuid::Uuid::now_v7()),
            source_ip: None,
        };
        self.admin.operator(self.principal.clone(), meta)
    }
}
