//! Task definitions travel as ECS's own JSON documents, through the SDK's signed, retried transport.
//!
//! The ECS API speaks JSON 1.1: the document a user writes for
//! `aws ecs register-task-definition --cli-input-json` *is* the request body. The SDK's typed
//! builders would make us map ~100 nested fields by hand (and lose any we forgot), so for the two
//! calls that carry whole task definitions we let the SDK build, sign and retry the request as
//! usual and swap in the document (`RawRequest`), or keep the response body as it came (`RawResponse`).

use aws_sdk_ecs::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_ecs::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_types::body::SdkBody;
use std::sync::{Arc, Mutex};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Replaces the serialized request body with this JSON document before it is signed.
#[derive(Debug)]
pub(crate) struct RawRequest(pub(crate) Vec<u8>);

impl Intercept for RawRequest {
    fn name(&self) -> &'static str {
        "deployer::RawRequest"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        *request.body_mut() = SdkBody::from(self.0.clone());
        request
            .headers_mut()
            .insert("content-length", self.0.len().to_string());
        Ok(())
    }
}

/// Keeps a copy of the response body, as ECS sent it.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawResponse(Arc<Mutex<Option<Vec<u8>>>>);

impl RawResponse {
    pub(crate) fn take(&self) -> Option<Vec<u8>> {
        self.0
            .lock()
            .expect("no thread panics while holding this lock")
            .take()
    }
}

impl Intercept for RawResponse {
    fn name(&self) -> &'static str {
        "deployer::RawResponse"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(bytes) = context.response().body().bytes() {
            *self
                .0
                .lock()
                .expect("no thread panics while holding this lock") = Some(bytes.to_vec());
        }
        Ok(())
    }
}
