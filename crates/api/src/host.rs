//! The two hosts of a router: AWS Lambda behind API Gateway, and a local listener.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;

/// Serves `app` on `listener` until `shutdown` completes, with each peer's address available to
/// the request context.
pub async fn serve_local(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Serves `app` as a Lambda function behind an API Gateway HTTP API.
#[cfg(feature = "lambda")]
pub async fn run_lambda(app: Router) -> Result<(), lambda_http::Error> {
    lambda_http::run(lambda_app(app)).await
}

/// `app` as the Lambda host runs it: API Gateway's request context feeds the request id and
/// the client's address. (Public so that handler tests can feed it API Gateway events.)
#[cfg(feature = "lambda")]
pub fn lambda_app(app: Router) -> Router {
    app.layer(axum::middleware::from_fn(from_api_gateway))
}

/// Carries API Gateway's request id and the caller's `sourceIp` into the request context.
#[cfg(feature = "lambda")]
async fn from_api_gateway(
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;

    use crate::context::{ClientAddr, RequestId};

    if let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() {
        let ip = ctx.http.source_ip.as_deref().and_then(|ip| ip.parse().ok());
        let id = ctx.request_id.clone();
        if let Some(ip) = ip {
            req.extensions_mut().insert(ClientAddr(ip));
        }
        if let Some(id) = id {
            req.extensions_mut().insert(RequestId(id));
        }
    }
    next.run(req).await
}
