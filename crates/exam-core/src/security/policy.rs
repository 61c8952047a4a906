//! What this computer checks and what it does about what it finds: prohibited programs by
//! category (defaults in the spirit of Safe Exam Browser's list), what each category does
//! before an attempt (refuse to start, or warn) — during an attempt a finding is only ever
//! reported and shown, never a reason to stop the exam — and the programs IT allows.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// A group of prohibited programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename = "ProgramCategory")]
pub enum Category {
    /// Someone else can see or drive this computer.
    RemoteControl,
    /// Meetings, calls and chat.
    MeetingsChat,
    /// Screen recording and streaming.
    ScreenRecording,
}

impl Category {
    pub const ALL: [Category; 3] = [
        Category::RemoteControl,
        Category::MeetingsChat,
        Category::ScreenRecording,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RemoteControl => "remote_control",
            Self::MeetingsChat => "meetings_chat",
            Self::ScreenRecording => "screen_recording",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// What a category does before an attempt starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum BeforeStart {
    /// The exam does not start while such a program runs (checked again live: it starts as
    /// soon as the program is closed).
    Refuse,
    /// The student is told; the exam starts.
    Warn,
}

/// Programs of each category as their file names are (lower case, without `.exe`). Linux
/// shows a process's name cut to 15 bytes; matching accounts for that.
const REMOTE_CONTROL: &[&str] = &[
    "anydesk",
    "teamviewer",
    "teamviewerd",
    "teamviewer_service",
    "tv_bin",
    "rustdesk",
    "x11vnc",
    "vncserver",
    "xvnc",
    "xtigervnc",
    "tigervncserver",
    "winvnc",
    "tvnserver",
    "vncagent",
    "remoting_host",
    "chrome-remote-desktop-host",
    "xrdp",
    "xrdp-sesman",
    "parsecd",
    "splashtopstreamer",
    "srserver",
    "logmein",
    "lmiguardian",
    "ammyy_admin",
    "supremo",
    "dwagent",
    "meshagent",
    "remotepcservice",
    "zohoassist",
    "getscreen",
    "nxserver",
    "nxnode",
    "screenconnect.clientservice",
    "remmina",
];

const MEETINGS_CHAT: &[&str] = &[
    "zoom",
    "zoom.us",
    "teams",
    "ms-teams",
    "teams-for-linux",
    "discord",
    "skype",
    "skypeforlinux",
    "slack",
    "telegram",
    "telegram-desktop",
    "whatsapp",
    "signal",
    "signal-desktop",
    "webex",
    "ciscowebexstart",
    "gotomeeting",
    "jitsi-meet",
    "element",
    "element-desktop",
    "viber",
    "zalo",
    "messenger",
    "wechat",
    "line",
];

const SCREEN_RECORDING: &[&str] = &[
    "obs",
    "obs64",
    "obs32",
    "simplescreenrecorder",
    "kazam",
    "vokoscreen",
    "vokoscreenng",
    "recordmydesktop",
    "bandicam",
    "camtasia",
    "camrec",
    "screenrec",
    "peek",
    "kooha",
    "sharex",
    "snagit32",
    "snagiteditor",
    "loom",
];

/// The policy in force.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct SecurityPolicy {
    /// Prohibited programs by category (normalised names).
    pub programs: BTreeMap<Category, BTreeSet<String>>,
    /// Programs allowed whatever the lists say (normalised names).
    pub allowed: BTreeSet<String>,
    /// What each category does before an attempt.
    pub before_start: BTreeMap<Category, BeforeStart>,
    /// Whether more than one display is reported.
    pub one_display: bool,
}

impl Default for SecurityPolicy {
    fn default() -> Self {
        let list = |names: &[&str]| names.iter().map(|n| normalise(n)).collect();
        Self {
            programs: BTreeMap::from([
                (Category::RemoteControl, list(REMOTE_CONTROL)),
                (Category::MeetingsChat, list(MEETINGS_CHAT)),
                (Category::ScreenRecording, list(SCREEN_RECORDING)),
            ]),
            allowed: BTreeSet::new(),
            before_start: BTreeMap::from([
                (Category::RemoteControl, BeforeStart::Refuse),
                (Category::MeetingsChat, BeforeStart::Warn),
                (Category::ScreenRecording, BeforeStart::Warn),
            ]),
            one_display: true,
        }
    }
}

/// A program's name as policies compare it: lower case, no directory, no `.exe`.
pub fn normalise(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name).trim();
    let lower = base.to_lowercase();
    lower.strip_suffix(".exe").unwrap_or(&lower).to_string()
}

/// Linux keeps at most 15 bytes of a process's name.
const COMM_BYTES: usize = 15;

fn truncated(name: &str) -> &str {
    if name.len() <= COMM_BYTES {
        return name;
    }
    let mut end = COMM_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

impl SecurityPolicy {
    /// The category of a program with these names (its process name, and its file's name
    /// — a renamed copy keeps one of them, a copy renamed to something else entirely is
    /// what the original file name of Windows catches), and which name matched; none when it
    /// is allowed or not listed.
    pub fn categorise(&self, names: &[&str]) -> Option<(Category, String)> {
        let names: Vec<String> = names
            .iter()
            .map(|n| normalise(n))
            .filter(|n| !n.is_empty())
            .collect();
        if names
            .iter()
            .any(|n| self.allowed.contains(n) || self.allowed.iter().any(|a| truncated(a) == n))
        {
            return None;
        }
        for (category, programs) in &self.programs {
            for name in &names {
                if programs.contains(name) {
                    return Some((*category, name.clone()));
                }
                // A process name cut to 15 bytes by Linux.
                if name.len() == COMM_BYTES {
                    if let Some(full) = programs.iter().find(|p| truncated(p) == name) {
                        return Some((*category, full.clone()));
                    }
                }
            }
        }
        None
    }

    /// The shipped policy with IT's changes from the configuration (`[security]`).
    pub fn from_settings(settings: &crate::config::SecuritySettings) -> Self {
        let before_start = settings
            .refuse_before_start
            .as_ref()
            .map(|refuse| {
                Category::ALL
                    .into_iter()
                    .map(|c| {
                        let action = if refuse.contains(&c) {
                            BeforeStart::Refuse
                        } else {
                            BeforeStart::Warn
                        };
                        (c, action)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut policy = Self::default().with_changes(
            &settings.add_programs,
            &settings.remove_programs,
            &settings.allow_programs,
            &before_start,
        );
        if let Some(one) = settings.one_display {
            policy.one_display = one;
        }
        policy
    }

    /// Applies IT's additions, removals and allowances (managed configuration).
    pub fn with_changes(
        mut self,
        add: &BTreeMap<Category, Vec<String>>,
        remove: &[String],
        allow: &[String],
        before_start: &BTreeMap<Category, BeforeStart>,
    ) -> Self {
        for (category, names) in add {
            self.programs
                .entry(*category)
                .or_default()
                .extend(names.iter().map(|n| normalise(n)));
        }
        for name in remove.iter().map(|n| normalise(n)) {
            for programs in self.programs.values_mut() {
                programs.remove(&name);
            }
        }
        self.allowed.extend(allow.iter().map(|n| normalise(n)));
        self.before_start
            .extend(before_start.iter().map(|(c, b)| (*c, *b)));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_recognised_by_process_or_file_name_and_allowed_ones_never() {
        let policy = SecurityPolicy::default();
        // (names seen, expected category)
        let table: &[(&[&str], Option<Category>)] = &[
            (&["anydesk"], Some(Category::RemoteControl)),
            (&["AnyDesk.exe"], Some(Category::RemoteControl)),
            (
                &["C:\\Program Files\\AnyDesk\\AnyDesk.exe"],
                Some(Category::RemoteControl),
            ),
            // Renamed: the process is called something else, its file is still AnyDesk.
            (
                &["notes", "/opt/anydesk/anydesk"],
                Some(Category::RemoteControl),
            ),
            // Linux cuts process names to 15 bytes.
            (&["telegram-deskto"], Some(Category::MeetingsChat)),
            (&["simplescreenrec"], Some(Category::ScreenRecording)),
            (&["zoom"], Some(Category::MeetingsChat)),
            (&["obs64.exe"], Some(Category::ScreenRecording)),
            // Not listed, or only alike.
            (&["zoomer"], None),
            (&["bash", "/usr/bin/bash"], None),
            (&["exam-desktop"], None),
            (&["anydesk-notes"], None),
            (&[""], None),
        ];
        for (names, expected) in table {
            assert_eq!(
                policy.categorise(names).map(|(c, _)| c),
                *expected,
                "{names:?}"
            );
        }
        let changed = SecurityPolicy::default().with_changes(
            &BTreeMap::from([(Category::MeetingsChat, vec!["ChatApp.exe".into()])]),
            &["zoom".into()],
            &["teams".into()],
            &BTreeMap::from([(Category::MeetingsChat, BeforeStart::Refuse)]),
        );
        assert_eq!(
            changed.categorise(&["chatapp"]).map(|(c, _)| c),
            Some(Category::MeetingsChat)
        );
        assert_eq!(changed.categorise(&["zoom"]), None, "removed by IT");
        assert_eq!(changed.categorise(&["Teams.exe"]), None, "allowed by IT");
        assert_eq!(
            changed.before_start[&Category::MeetingsChat],
            BeforeStart::Refuse
        );
    }
}
