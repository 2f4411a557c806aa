//! Routers that list what they route: the API's and the web console's tables.

use axum::Router;
use axum::handler::Handler;
use axum::routing::{self, MethodRouter};

/// One routed operation: a method and a path template (`{name}` for a parameter), as the
/// OpenAPI document and the SAM template name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
}

/// A router that records what it routes, so that the operations it serves can be listed (and
/// checked against the OpenAPI document and the SAM template) without a state to serve them.
pub(crate) struct Table<S> {
    pub(crate) router: Router<S>,
    pub(crate) operations: Vec<Operation>,
}

impl<S: Clone + Send + Sync + 'static> Table<S> {
    pub(crate) fn new() -> Self {
        Self {
            router: Router::new(),
            operations: Vec::new(),
        }
    }

    fn route(mut self, method: &'static str, path: &'static str, route: MethodRouter<S>) -> Self {
        self.router = self.router.route(path, route);
        self.operations.push(Operation { method, path });
        self
    }

    pub(crate) fn get<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.route("GET", path, routing::get(handler))
    }

    pub(crate) fn post<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.route("POST", path, routing::post(handler))
    }

    /// A POST whose body may be larger than the API's limit (a SAML response).
    #[allow(dead_code, reason = "only the console's table takes large bodies")]
    pub(crate) fn post_large<H: Handler<T, S>, T: 'static>(
        self,
        path: &'static str,
        handler: H,
        limit: usize,
    ) -> Self {
        self.route(
            "POST",
            path,
            routing::post(handler).layer(axum::extract::DefaultBodyLimit::max(limit)),
        )
    }

    #[allow(dead_code, reason = "not every table puts")]
    pub(crate) fn put<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.route("PUT", path, routing::put(handler))
    }

    #[allow(dead_code, reason = "not every table deletes")]
    pub(crate) fn delete<H: Handler<T, S>, T: 'static>(
        self,
        path: &'static str,
        handler: H,
    ) -> Self {
        self.route("DELETE", path, routing::delete(handler))
    }
}
