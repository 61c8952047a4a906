//! `exam-desktop doctor --purge`: removes what uninstalling leaves behind for this account —
//! the app's files in the data folder and its entries in the OS keychain — after saying
//! exactly what, and only when nothing would be lost silently.
//!
//! It refuses while the app runs (it holds its databases open: [`databases::app_running`]),
//! and while answers or submissions wait to be delivered, were refused by the server, or may
//! sit in a database the app set aside as damaged — unless IT forces it, having exported
//! them first (`exam-desktop queue export`). Only the app's own entries of the data folder
//! are removed; anything else found there is named and left, and the folder goes only when
//! it is then empty. Keychain entries are found by the names the app gives them (the
//! servers and students this computer's database knows, and the signed-in student of each
//! server), since keychains cannot be listed; their names, which hold students' usernames,
//! are never shown.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::databases;
use super::queue::ToolError;
use crate::config::Settings;
use crate::keychain::{KeychainError, SecretStore};
use crate::owner::Owner;

/// Work that removing the data folder would lose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Waiting {
    /// Answers, submissions and events not yet delivered (telemetry is not counted).
    pub items: u64,
    /// Refused by the server and kept here.
    pub refused: u64,
    /// Databases the app set aside as damaged (they may hold work never delivered).
    pub set_aside: Vec<PathBuf>,
    /// The database could not be read, so nobody can tell.
    pub unreadable: Option<String>,
}

impl Waiting {
    pub fn any(&self) -> bool {
        self.items > 0
            || self.refused > 0
            || !self.set_aside.is_empty()
            || self.unreadable.is_some()
    }
}

/// The app's keychain entries found on this computer, by kind (never by name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entries {
    /// The names, which hold students' usernames: used to remove them, never shown.
    names: Vec<String>,
    pub signed_in_markers: usize,
    pub sessions: usize,
    pub delivery_credentials: usize,
    pub answer_keys: usize,
    /// Students the entries were looked for (a count).
    pub students: usize,
    /// The servers they were looked for.
    pub origins: Vec<String>,
}

impl Entries {
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// What a purge would remove, and what stands in its way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub data_dir: PathBuf,
    /// The app's entries of the data folder, each with its size in bytes and its file count.
    pub remove: Vec<(PathBuf, u64, u64)>,
    /// Entries of the folder that are not the app's: left in place.
    pub keep: Vec<PathBuf>,
    pub entries: Entries,
    /// Why the keychain could not be looked in.
    pub keychain_error: Option<String>,
    pub waiting: Waiting,
    pub app_running: bool,
    /// Why this folder must not be touched (a home or root folder named as the data folder).
    pub unsafe_folder: Option<String>,
}

/// Whether an entry of the data folder is the app's: its databases (and their logs, and
/// damaged copies), logs, exports and the updater's files.
fn is_apps(name: &str) -> bool {
    name.starts_with("exam-desktop")
        || name.starts_with("update")
        || name == "logs"
        || name == "exports"
}

fn size_of(path: &Path) -> (u64, u64) {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::read_dir(path)
            .map(|entries| {
                entries.flatten().fold((0, 0), |(bytes, files), e| {
                    let (b, f) = size_of(&e.path());
                    (bytes + b, files + f)
                })
            })
            .unwrap_or((0, 0)),
        Ok(meta) => (meta.len(), 1),
        Err(_) => (0, 0),
    }
}

/// Looks at the data folder, its database and the keychain: nothing is changed.
pub fn plan(settings: &Settings, secrets: &dyn SecretStore) -> Plan {
    let data_dir = settings.data_dir.clone();
    let database = data_dir.join(crate::store::FILE_NAME);
    let (waiting, origins, students) = read_database(&database);
    let app_running = databases::app_running(&data_dir);
    // Listed after the database was read, so the list is what is there now.
    let mut remove = Vec::new();
    let mut keep = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&data_dir) {
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if is_apps(&name) {
                let (bytes, files) = size_of(&path);
                remove.push((path, bytes, files));
            } else {
                keep.push(path);
            }
        }
    }
    let mut waiting = waiting;
    waiting.set_aside = remove
        .iter()
        .map(|(p, _, _)| p.clone())
        .filter(|p| {
            let name = p.to_string_lossy();
            name.contains(".damaged-") && !name.ends_with("-wal") && !name.ends_with("-shm")
        })
        .collect();
    let mut origins = origins;
    origins.push(crate::owner::origin_of(&settings.server_url));
    origins.sort();
    origins.dedup();
    let (entries, keychain_error) = match find_entries(secrets, &origins, students) {
        Ok(entries) => (entries, None),
        Err(error) => (Entries::default(), Some(error.to_string())),
    };
    Plan {
        app_running,
        unsafe_folder: unsafe_folder(&data_dir),
        data_dir,
        remove,
        keep,
        entries,
        keychain_error,
        waiting,
    }
}

fn unsafe_folder(dir: &Path) -> Option<String> {
    if dir.parent().is_none() {
        return Some(format!("{} is the root of a disk", dir.display()));
    }
    let home = directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf());
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    home.filter(|home| same(dir, home))
        .map(|home| format!("{} is this account's home folder", home.display()))
}

/// What the database says is waiting, and the servers and students it knows.
fn read_database(path: &Path) -> (Waiting, Vec<String>, Vec<String>) {
    let mut waiting = Waiting::default();
    if !path.exists() {
        return (waiting, Vec::new(), Vec::new());
    }
    let conn = match databases::open_for_reading(path) {
        Ok((conn, _)) => conn,
        Err(error) => {
            waiting.unreadable = Some(error.to_string());
            return (waiting, Vec::new(), Vec::new());
        }
    };
    let count = |sql: &str| -> Result<u64, rusqlite::Error> {
        conn.query_row(sql, [], |r| r.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
    };
    let counted = count(
        "SELECT COUNT(*) FROM queue
         WHERE status IN ('pending', 'in_flight') AND kind <> 'telemetry'",
    )
    .and_then(|items| {
        Ok((
            items,
            count("SELECT COUNT(*) FROM queue WHERE status = 'dead'")?,
        ))
    })
    .and_then(|(items, refused)| {
        let mut stmt = conn.prepare("SELECT entries FROM inbox")?;
        let rows = stmt.query_map([], |r| crate::queue::inbox::decode_column(r, 0))?;
        let mut saved = 0;
        for entries in rows {
            saved += entries?.iter().filter(|e| e.kind != "telemetry").count() as u64;
        }
        Ok((items + saved, refused))
    });
    match counted {
        Ok((items, refused)) => {
            waiting.items = items;
            waiting.refused = refused;
        }
        Err(error) => waiting.unreadable = Some(error.to_string()),
    }
    let mut origins = Vec::new();
    for table in [
        "queue",
        "inbox",
        "attempts",
        "exam_list",
        "opened_packages",
        "security_reports",
        "outages",
    ] {
        if let Ok(mut stmt) = conn.prepare(&format!(
            "SELECT DISTINCT origin FROM {table} WHERE origin IS NOT NULL"
        )) {
            let found: Vec<String> = match stmt.query_map([], |r| r.get::<_, String>(0)) {
                Ok(rows) => rows.flatten().collect(),
                Err(_) => Vec::new(),
            };
            origins.extend(found);
        }
    }
    let students = super::queue::known_students(&conn);
    (waiting, origins, students)
}

/// The app's keychain entries present for `origins` and `students` (and each server's
/// signed-in student, read from its marker).
fn find_entries(
    secrets: &dyn SecretStore,
    origins: &[String],
    students: Vec<String>,
) -> Result<Entries, KeychainError> {
    let mut entries = Entries {
        origins: origins.to_vec(),
        ..Entries::default()
    };
    let mut students = students;
    let mut present = |name: String| -> Result<bool, KeychainError> {
        let found = match secrets.get(&name) {
            Ok(value) => value.is_some(),
            // There, though unreadable: it goes too.
            Err(KeychainError::Corrupt { .. }) => true,
            Err(error) => return Err(error),
        };
        if found {
            entries.names.push(name);
        }
        Ok(found)
    };
    for origin in origins {
        let marker = format!("{origin} current-user");
        if let Ok(Some(user)) = secrets.get(&marker) {
            students.push(user.expose().clone());
        }
        if present(marker)? {
            entries.signed_in_markers += 1;
        }
    }
    students.sort();
    students.dedup();
    for origin in origins {
        for student in &students {
            if present(format!("{origin} refresh-token {student}"))? {
                entries.sessions += 1;
            }
            if present(format!("{origin} delivery-token {student}"))? {
                entries.delivery_credentials += 1;
            }
            if present(crate::keys::entry_of(&Owner::new(
                origin.as_str(),
                student.as_str(),
            )))? {
                entries.answer_keys += 1;
            }
        }
    }
    // The one answer key of earlier versions, shared by every student.
    if present(crate::seal::KEYCHAIN_ENTRY.to_string())? {
        entries.answer_keys += 1;
    }
    entries.students = students.len();
    Ok(entries)
}

fn mib(bytes: u64) -> String {
    if bytes >= 1_048_576 {
        format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
    } else if bytes >= 1024 {
        format!("{:.0} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

/// Exactly what a purge removes, and what it leaves.
pub fn describe(plan: &Plan, service: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "This removes what Exam Bank Desktop keeps for this account:"
    );
    if plan.remove.is_empty() {
        let _ = writeln!(
            out,
            "  - in the data folder {}: nothing of the app's",
            plan.data_dir.display()
        );
    } else {
        let (bytes, files) = plan
            .remove
            .iter()
            .fold((0, 0), |(b, f), (_, bytes, files)| (b + bytes, f + files));
        let _ = writeln!(
            out,
            "  - from the data folder {} ({files} files, {}):",
            plan.data_dir.display(),
            mib(bytes)
        );
        for (path, bytes, files) in &plan.remove {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if path.is_dir() {
                let _ = writeln!(out, "      {name}/ ({files} files, {})", mib(*bytes));
            } else {
                let _ = writeln!(out, "      {name} ({})", mib(*bytes));
            }
        }
        if plan.keep.is_empty() {
            let _ = writeln!(out, "    and then the folder itself");
        }
    }
    for path in &plan.keep {
        let _ = writeln!(
            out,
            "  - left in place, not the app's: {} (so the folder stays)",
            path.display()
        );
    }
    let e = &plan.entries;
    match &plan.keychain_error {
        Some(error) => {
            let _ = writeln!(
                out,
                "  - the app's entries in the OS keychain (service {service}) could not be looked \
                 for: {error}"
            );
        }
        None if e.is_empty() => {
            let _ = writeln!(
                out,
                "  - in the OS keychain (service {service}): no entry of the app's was found"
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  - {} entries in the OS keychain (service {service}, server {}): {} signed-in \
                 marker(s), {} saved sign-in(s), {} delivery credential(s), {} answer key(s) — of \
                 {} student(s) this computer knows",
                e.len(),
                e.origins.join(", "),
                e.signed_in_markers,
                e.sessions,
                e.delivery_credentials,
                e.answer_keys,
                e.students
            );
        }
    }
    let _ = writeln!(
        out,
        "The configuration files are IT's and stay. Nothing on the server is touched."
    );
    let w = &plan.waiting;
    if w.items > 0 || w.refused > 0 {
        let _ = writeln!(
            out,
            "WAITING WORK: {} item(s) not yet delivered and {} refused by the server would be lost.",
            w.items, w.refused
        );
    }
    for path in &w.set_aside {
        let _ = writeln!(
            out,
            "SET-ASIDE DATABASE: {} may hold work that was never delivered.",
            path.display()
        );
    }
    if let Some(error) = &w.unreadable {
        let _ = writeln!(
            out,
            "The database could not be read ({error}): whether work waits cannot be told."
        );
    }
    out
}

/// What to do with a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Remove it all.
    Go,
    /// Only say what would be removed (no `--yes`).
    DryRun,
    /// Nothing of the app's is here.
    Nothing,
    /// Not done, and why (nothing was changed).
    Refused(String),
}

/// Whether to remove `plan`'s data: `yes` to act, `force` to lose waiting work.
pub fn decide(plan: &Plan, yes: bool, force: bool) -> Verdict {
    if plan.app_running {
        return Verdict::Refused(format!(
            "Exam Bank Desktop is running on {}: quit it first. Nothing was removed.",
            plan.data_dir.display()
        ));
    }
    if let Some(why) = &plan.unsafe_folder {
        return Verdict::Refused(format!(
            "The data folder is set to {why}: remove the app's files by hand. Nothing was removed."
        ));
    }
    if let Some(error) = &plan.keychain_error {
        return Verdict::Refused(format!(
            "The OS keychain cannot be used ({error}), so the app's entries in it cannot be \
             removed; run this in the desktop session of the account that uses the app. \
             Nothing was removed."
        ));
    }
    if plan.waiting.any() && !force {
        return Verdict::Refused(
            "Work is still waiting to be delivered (see above): removing it now would lose it. \
             Run `exam-desktop queue export --out FILE` first and keep the file, let the app \
             deliver what it can, then run this again — or add --force to remove it anyway. \
             Nothing was removed."
                .into(),
        );
    }
    if plan.remove.is_empty() && plan.entries.is_empty() && !plan.data_dir.exists() {
        return Verdict::Nothing;
    }
    if !yes {
        return Verdict::DryRun;
    }
    Verdict::Go
}

/// What a purge removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Done {
    pub keychain_entries: usize,
    pub removed: Vec<PathBuf>,
    /// Whether the data folder itself is gone.
    pub folder_removed: bool,
}

/// Removes what `plan` names: the keychain entries first (the database still names them if
/// this stops half-way), then the app's files, then the folder if it is empty.
pub fn carry_out(plan: &Plan, secrets: &dyn SecretStore) -> Result<Done, ToolError> {
    let mut done = Done::default();
    for name in &plan.entries.names {
        secrets.delete(name).map_err(|error| ToolError::Keychain {
            removed: done.keychain_entries,
            error,
        })?;
        done.keychain_entries += 1;
    }
    for (path, _, _) in &plan.remove {
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
        match removed {
            Ok(()) => done.removed.push(path.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(ToolError::Remove {
                    path: path.clone(),
                    error,
                })
            }
        }
    }
    if plan.keep.is_empty() {
        match std::fs::remove_dir(&plan.data_dir) {
            Ok(()) => done.folder_removed = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => done.folder_removed = true,
            // Something appeared meanwhile: it stays, and so does the folder.
            Err(_) => {}
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::queue::{Limits, NewEntry, Queue};
    use crate::secret::Secret;
    use crate::testing::MemoryStore;

    const ORIGIN: &str = "http://127.0.0.1:8787";

    fn settings(dir: &Path) -> Settings {
        Settings::new(format!("{ORIGIN}/").parse().unwrap(), dir.join("data"))
    }

    fn keychain_of(students: &[&str]) -> Arc<MemoryStore> {
        let store = Arc::new(MemoryStore::default());
        let put = |k: String| store.set(&k, &Secret::new("v".into())).unwrap();
        put(format!("{ORIGIN} current-user"));
        store
            .set(
                &format!("{ORIGIN} current-user"),
                &Secret::new("zara".into()),
            )
            .unwrap();
        for s in students.iter().chain(&["zara"]) {
            put(format!("{ORIGIN} refresh-token {s}"));
            put(format!("{ORIGIN} answer-key {s}"));
        }
        put("someone else's entry".into());
        store
    }

    #[test]
    fn the_plan_names_the_apps_files_and_counts_entries_without_names() {
        let root = tempfile::tempdir().unwrap();
        let settings = settings(root.path());
        let queue = Queue::open(
            &settings.data_dir.join(crate::store::FILE_NAME),
            Limits::default(),
        )
        .unwrap();
        let owner = Owner::new(ORIGIN, "student7");
        queue
            .enqueue(NewEntry::telemetry(serde_json::json!([])).owned_by(&owner))
            .unwrap();
        drop(queue);
        std::fs::create_dir_all(settings.data_dir.join("logs")).unwrap();
        std::fs::write(settings.data_dir.join("logs/exam-desktop.log"), b"x").unwrap();
        std::fs::write(settings.data_dir.join("notes.txt"), b"IT's").unwrap();
        let secrets = keychain_of(&["student7"]);
        let plan = plan(&settings, secrets.as_ref());
        assert!(!plan.app_running);
        assert!(!plan.waiting.any(), "{:?}", plan.waiting);
        assert_eq!(plan.keep, [settings.data_dir.join("notes.txt")]);
        assert!(plan
            .remove
            .iter()
            .any(|(p, _, files)| p.ends_with("logs") && *files == 1));
        // The signed-in student (from the marker) and the one the database knows.
        assert_eq!(plan.entries.students, 2);
        assert_eq!(plan.entries.len(), 5);
        let text = describe(&plan, "org.exambank.desktop");
        assert!(
            !text.contains("student7") && !text.contains("zara"),
            "{text}"
        );
        assert!(text.contains("notes.txt"), "{text}");
        assert!(text.contains("5 entries in the OS keychain"), "{text}");
        assert_eq!(decide(&plan, false, false), Verdict::DryRun);
        assert_eq!(decide(&plan, true, false), Verdict::Go);
        let done = carry_out(&plan, secrets.as_ref()).unwrap();
        assert_eq!(done.keychain_entries, 5);
        assert!(!done.folder_removed);
        assert_eq!(secrets.keys(), ["someone else's entry"]);
        assert_eq!(
            std::fs::read_dir(&settings.data_dir).unwrap().count(),
            1,
            "only IT's file is left"
        );
    }

    #[test]
    fn waiting_work_refuses_unless_forced_and_a_running_app_always_refuses() {
        let root = tempfile::tempdir().unwrap();
        let settings = settings(root.path());
        let queue = Queue::open(
            &settings.data_dir.join(crate::store::FILE_NAME),
            Limits::default(),
        )
        .unwrap();
        queue
            .enqueue(
                NewEntry::answer(
                    "att-1",
                    "q1",
                    serde_json::json!("A"),
                    "2025-01-01T00:00:00Z",
                )
                .owned_by(&Owner::new(ORIGIN, "student7")),
            )
            .unwrap();
        let secrets = keychain_of(&[]);
        let running = plan(&settings, secrets.as_ref());
        assert!(running.app_running, "the queue holds the database open");
        assert!(
            matches!(decide(&running, true, true), Verdict::Refused(why) if why.contains("running"))
        );
        drop(queue);
        let plan = plan(&settings, secrets.as_ref());
        assert_eq!(plan.waiting.items, 1);
        assert!(describe(&plan, "s").contains("WAITING WORK: 1 item(s)"));
        let Verdict::Refused(why) = decide(&plan, true, false) else {
            panic!("not refused");
        };
        assert!(why.contains("exam-desktop queue export"), "{why}");
        assert_eq!(decide(&plan, true, true), Verdict::Go);
        let done = carry_out(&plan, secrets.as_ref()).unwrap();
        assert!(done.folder_removed);
        assert!(!settings.data_dir.exists());
        assert_eq!(
            decide(
                &super::plan(&settings, &MemoryStore::default()),
                true,
                false
            ),
            Verdict::Nothing
        );
    }

    #[test]
    fn a_set_aside_database_counts_as_work_that_may_be_waiting() {
        let root = tempfile::tempdir().unwrap();
        let settings = settings(root.path());
        std::fs::create_dir_all(&settings.data_dir).unwrap();
        std::fs::write(
            settings
                .data_dir
                .join("exam-desktop.db.damaged-2025-01-01T00-00-00.000Z"),
            b"x",
        )
        .unwrap();
        let plan = plan(&settings, &MemoryStore::default());
        assert_eq!(plan.waiting.set_aside.len(), 1);
        assert!(matches!(decide(&plan, true, false), Verdict::Refused(_)));
    }
}
