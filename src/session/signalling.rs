//! The signalling thread: the runtime that runs SIP transport loops and call tasks.

/// The thread that carries SIP signalling: the transport's receive loops, every call task
/// and its timers, on a runtime of one thread. The relay's tasks and the control API run on
/// the multi-threaded runtime.
///
/// A message for a call then reaches the call's task on the thread that received it. On
/// one multi-threaded runtime each hand-off let another worker wake up and steal the
/// call's task, so a call's messages waited on wake-ups and competed with the relay for
/// cores. One core carries far more calls per second than the hotlines' trunks offer,
/// while relaying media, which needs more than one core, keeps every worker. A call still
/// crosses to the relay's runtime twice: to start its relay task and to stop it.
pub struct SignallingThread {
    runtime: tokio::runtime::Handle,
    /// Dropped to stop the thread; its runtime then drops the tasks left.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl SignallingThread {
    /// Starts the thread and its runtime.
    ///
    /// # Errors
    ///
    /// When the runtime or the thread cannot be created.
    pub fn start() -> std::io::Result<SignallingThread> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("signalling".to_owned())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        Ok(SignallingThread {
            runtime: handle,
            stop: Some(stop),
        })
    }

    /// Returns the handle of the signalling runtime.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }
}

impl Drop for SignallingThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
