//! The metrics endpoint of a sweep: [`crate::prometheus`] serving the sweep's [`Metrics`].

use std::future::Future;
use std::sync::Arc;

use super::metrics::Metrics;
use crate::endpoint::Listener;
use crate::prometheus::{self, Render};

impl Render for Metrics {
    fn render(&self) -> String {
        Metrics::render(self)
    }
}

/// Serves `metrics` on `listener` until `shutdown` completes; requests in flight then are
/// dropped.
pub async fn serve_until(listener: Listener, metrics: Arc<Metrics>, shutdown: impl Future) {
    prometheus::serve_until(listener, metrics, shutdown).await;
}
