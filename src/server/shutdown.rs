//! Graceful shutdown: readiness off, stop accepting, drain with a timeout, then
//! flush the access log.

use crate::server::RunningGateway;

impl RunningGateway {
    /// Re-reads the certificate files (on SIGHUP): new connections use them, open
    /// ones keep theirs. A failure changes nothing and says why.
    pub fn reload_tls(&self) -> anyhow::Result<()> {
        match &self.tls {
            Some(tls) => tls.reload(),
            None => Ok(()),
        }
    }

    /// Stops accepting, lets in-flight calls finish for up to the drain timeout (idle
    /// client connections would otherwise hold it open forever), waits for the calls
    /// still running to their records, then flushes the access log.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let RunningGateway {
            stop,
            drain_timeout,
            mut server,
            writer,
            background,
            admin_server,
            health_server,
            background_servers,
            health,
            calls,
            ..
        } = self;
        for task in background {
            task.abort();
        }
        // Readiness fails from now on, so balancers stop sending new calls here.
        crate::server::health::shutting_down(&health.reporter).await;
        // Watchers have been told; their streams must not hold the drain open.
        health.end_watches();
        for s in stop.into_iter().rev() {
            let _ = s.send(());
        }
        match tokio::time::timeout(drain_timeout, &mut server).await {
            Ok(result) => result??,
            Err(_) => {
                tracing::warn!(
                    ?drain_timeout,
                    "calls still open after the drain timeout: closing them"
                );
                server.abort();
                let _ = server.await;
            }
        }
        for server in background_servers {
            server.abort();
        }
        if let Some(health) = health_server {
            health.abort();
            let _ = health.await;
        }
        if let Some(admin) = admin_server {
            // Audit reads hold no access record open: no need to wait for them.
            admin.abort();
            let _ = admin.await;
        }
        // Calls whose callers are gone (e.g. their deadline passed) may still run to
        // their records: those records are written before the log is closed. Each
        // call is bounded by the upstream's timeout and the commit's.
        calls.close();
        if tokio::time::timeout(drain_timeout, calls.wait())
            .await
            .is_err()
        {
            tracing::error!(
                calls = calls.len(),
                "calls still running after the drain timeout: their records are lost"
            );
        }
        // Connections that outlived the drain may still hold writer handles: close it
        // explicitly; it commits what is queued and refuses the rest.
        writer.close().await?;
        Ok(())
    }
}
