//! Windows the core opens.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};

use tauri::{AppHandle, Manager, Runtime, WebviewUrl, WebviewWindowBuilder};

use crate::error::IpcError;

/// Opens a status window when called (set up once the app handle exists).
pub type StatusWindowOpener =
    Box<dyn Fn() -> Pin<Box<dyn Future<Output = Result<String, IpcError>> + Send>> + Send + Sync>;

static STATUS_WINDOWS: AtomicU32 = AtomicU32::new(0);

pub fn opener<R: Runtime>(app: AppHandle<R>) -> StatusWindowOpener {
    Box::new(move || Box::pin(open_status_window(app.clone())))
}

/// Opens another status window (`diagnostics-N`); its label.
///
/// On Linux every status window shares the main window's web process (WebKitGTK "related
/// views"): one process instead of one per window, so events reach all of them sooner and
/// each costs far less memory.
pub async fn open_status_window<R: Runtime>(app: AppHandle<R>) -> Result<String, IpcError> {
    let n = STATUS_WINDOWS.fetch_add(1, Ordering::Relaxed) + 1;
    let label = format!("diagnostics-{n}");
    let main = app
        .get_webview_window("main")
        .ok_or_else(|| IpcError::internal("the main window is gone"))?;
    let (done, built) = tokio::sync::oneshot::channel();
    let (handle, name) = (app.clone(), label.clone());
    // Built on the main thread, where the main window's web view can be borrowed.
    main.with_webview(move |platform| {
        let builder =
            WebviewWindowBuilder::new(&handle, &name, WebviewUrl::App("diagnostics.html".into()))
                .title(format!("Exam Bank Desktop — status {n}"))
                .inner_size(720.0, 640.0)
                .min_inner_size(480.0, 400.0);
        #[cfg(target_os = "linux")]
        let builder = builder.with_related_view(platform.inner());
        #[cfg(not(target_os = "linux"))]
        let _ = platform;
        let _ = done.send(builder.build().map(|_| ()));
    })?;
    built
        .await
        .map_err(|_| IpcError::internal("the status window was not created"))??;
    Ok(label)
}
