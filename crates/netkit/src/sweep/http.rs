//! The metrics endpoint of a sweep: [`crate::prometheus`] serving the sweep's [`Metrics`].

use std::sync::Arc;

use super::metrics::Metrics;
use crate::endpoint::Listener;
use crate::prometheus::{self, Render};

impl Render for Metrics {
    fn render(&self) -> String {
        Metrics::render(self)
    }
}

/// Serves `metrics` on `listener` until the future is dropped.
pub async fn serve(listener: Listener, metrics: Arc<Metrics>) {
    prometheus::serve_until(listener, metrics, std::future::pending::<()>()).await;
}
