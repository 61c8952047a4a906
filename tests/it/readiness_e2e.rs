//! Readiness before an exam in the built app: the exam list says, before the exam, that
//! tomorrow's exam needs a newer app than this one; once downloaded, each exam has its
//! readiness card, line by line — ready for the practice exam, not ready for tomorrow's
//! (this app is too old), with how to fix it — in English and Vietnamese.

use std::time::Duration;

use anyhow::Result;

use crate::support::{self, SERIAL};

const WAIT: Duration = Duration::from_secs(30);
const TOMORROW: &str = "demo-sealed-tomorrow";
const PRACTICE: &str = "demo-mixed";

#[test]
fn each_downloaded_exam_has_its_readiness_card_and_an_exam_needing_a_newer_app_says_so_ahead(
) -> Result<()> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_server, _data_dir, harness) = support::against_demo_server()?;
    let session = harness.session()?;
    session.sign_in("student29", "demo")?;

    // Before any download: the list says tomorrow's exam needs a newer app.
    let notice = session.wait_text(
        &format!("[data-testid=exam-version-{TOMORROW}]"),
        WAIT,
        |t| !t.is_empty(),
    )?;
    assert_eq!(
        notice.trim(),
        format!(
            "This exam needs version 0.2.0 or newer; this computer has {} — ask IT to update",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert!(
        session
            .execute(&format!(
                "return document.querySelector('[data-testid=readiness-{TOMORROW}]') === null"
            ))?
            .as_bool()
            .unwrap_or(false),
        "no card before the download"
    );

    for exam in [PRACTICE, TOMORROW] {
        session.click(&format!("[data-testid=download-{exam}]"))?;
    }
    let practice = session.wait_text(
        &format!("[data-testid=readiness-verdict-{PRACTICE}]"),
        WAIT,
        |t| !t.is_empty(),
    )?;
    let tomorrow = session.wait_text(
        &format!("[data-testid=readiness-verdict-{TOMORROW}]"),
        WAIT,
        |t| !t.is_empty(),
    )?;
    assert_eq!(tomorrow.trim(), "Not ready");
    let version = session.text(&format!("[data-testid=readiness-{TOMORROW}-app_version]"))?;
    assert!(
        version.contains("This exam needs version 0.2.0 or newer")
            && version.contains("Ask IT to update the app before the exam."),
        "{version}"
    );
    assert_eq!(
        session.attribute(
            &format!("[data-testid=readiness-{TOMORROW}-package]"),
            "data-state"
        )?,
        "ok"
    );
    let package = session.text(&format!("[data-testid=readiness-{PRACTICE}-package]"))?;
    assert!(
        package.contains("Downloaded and checked (version 1)"),
        "{package}"
    );
    let server = session.text(&format!("[data-testid=readiness-{PRACTICE}-server]"))?;
    assert!(server.contains("can be reached"), "{server}");
    // The practice exam is ready unless this test machine's disk is nearly full.
    println!("readiness card of {PRACTICE} in the app: {practice}");
    session.execute(&format!(
        "document.querySelector('[data-testid=readiness-{TOMORROW}]').scrollIntoView({{block: 'center'}})"
    ))?;
    std::thread::sleep(Duration::from_millis(300));
    support::screenshot(&harness.display, "e2e-readiness.png")?;

    // In Vietnamese, the same card.
    session.click("[data-testid=language] option[value=vi]")?;
    session.wait_text(
        &format!("[data-testid=readiness-verdict-{TOMORROW}]"),
        WAIT,
        |t| t.contains("Chưa sẵn sàng"),
    )?;
    let version = session.text(&format!("[data-testid=readiness-{TOMORROW}-app_version]"))?;
    assert!(
        version.contains("Bài thi này cần phiên bản 0.2.0 trở lên"),
        "{version}"
    );
    session.execute(&format!(
        "document.querySelector('[data-testid=readiness-{TOMORROW}]').scrollIntoView({{block: 'center'}})"
    ))?;
    std::thread::sleep(Duration::from_millis(300));
    support::screenshot(&harness.display, "e2e-readiness-vi.png")?;
    Ok(())
}
