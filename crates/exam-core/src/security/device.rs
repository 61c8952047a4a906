//! What this computer is running and what it is: processes (by process name and file name),
//! hints that it is a virtual machine, a remote session, and a fingerprint of the machine
//! (an HMAC of stable identifiers: never a raw serial). Read with `sysinfo` and the
//! platform's files; a scan of the processes is kept cheap (names and file paths only, the
//! process table refreshed in place).

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};

/// A running process as policies see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSeen {
    pub pid: u32,
    /// The process's name (Linux: at most 15 bytes).
    pub name: String,
    /// Its executable's path, when it can be read.
    pub file: Option<String>,
}

/// A hint that this computer is a virtual machine, and where it was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmHint {
    pub source: String,
    pub value: String,
}

/// What is slow to change: read at start and now and then.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineFacts {
    pub vm_hints: Vec<VmHint>,
    /// The CPU says a hypervisor runs it (every Windows PC with Hyper-V on says so too: a
    /// weak hint).
    pub hypervisor_flag: bool,
    /// Why this looks like a remote session, if it does.
    pub remote_session: Option<String>,
    /// HMAC of the machine's stable identifiers (hex, 32 characters).
    pub fingerprint: String,
}

/// Scans the processes of this computer, keeping the process table between scans.
pub struct ProcessScanner {
    /// None when the platform's process table cannot be read (the reason is logged once;
    /// scans then see nothing rather than fail).
    system: Option<System>,
}

impl Default for ProcessScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessScanner {
    pub fn new() -> Self {
        let system = System::new()
            .map_err(|error| {
                tracing::error!(%error, "the list of processes cannot be read on this computer");
            })
            .ok();
        Self { system }
    }

    /// The processes running now, and how long the scan took.
    pub fn scan(&mut self) -> (Vec<ProcessSeen>, Duration) {
        let started = Instant::now();
        let Some(system) = self.system.as_mut() else {
            return (Vec::new(), started.elapsed());
        };
        system.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing().with_exe(UpdateKind::OnlyIfNotSet),
        );
        let processes = system
            .processes()
            .iter()
            .filter(|(_, p)| p.thread_kind().is_none())
            .map(|(pid, p)| ProcessSeen {
                pid: pid.as_u32(),
                name: p.name().to_string_lossy().into_owned(),
                file: p.exe().map(|e| e.display().to_string()),
            })
            .collect();
        (processes, started.elapsed())
    }
}

/// Vendor and product strings of virtual machines (SMBIOS).
const VM_VENDORS: &[&str] = &[
    "qemu",
    "kvm",
    "virtualbox",
    "innotek",
    "vmware",
    "xen",
    "parallels",
    "bochs",
    "bhyve",
    "google compute engine",
    "amazon ec2",
    "openstack",
    "virtual machine",
];

/// MAC address prefixes of virtual network cards.
const VM_MAC_PREFIXES: &[(&str, &str)] = &[
    ("08:00:27", "VirtualBox"),
    ("0a:00:27", "VirtualBox"),
    ("52:54:00", "QEMU/KVM"),
    ("00:0c:29", "VMware"),
    ("00:50:56", "VMware"),
    ("00:05:69", "VMware"),
    ("00:1c:14", "VMware"),
    ("00:15:5d", "Hyper-V"),
    ("00:16:3e", "Xen"),
    ("00:1c:42", "Parallels"),
];

/// SMBIOS strings that name a virtual machine, from `(where, value)` pairs.
pub fn vm_hints_from_dmi(fields: &[(&str, String)]) -> Vec<VmHint> {
    fields
        .iter()
        .filter(|(_, value)| {
            let lower = value.to_lowercase();
            VM_VENDORS.iter().any(|v| lower.contains(v))
        })
        .map(|(source, value)| VmHint {
            source: format!("SMBIOS {source}"),
            value: value.trim().to_string(),
        })
        .collect()
}

/// Virtual network cards among `(interface, MAC)` pairs.
pub fn vm_hints_from_macs(macs: &[(String, String)]) -> Vec<VmHint> {
    macs.iter()
        .filter_map(|(interface, mac)| {
            let lower = mac.to_lowercase();
            VM_MAC_PREFIXES
                .iter()
                .find(|(prefix, _)| lower.starts_with(prefix))
                .map(|(prefix, maker)| VmHint {
                    source: format!("network card {interface}"),
                    value: format!("MAC prefix {prefix} ({maker})"),
                })
        })
        .collect()
}

/// Why the environment looks like a remote session (Linux: SSH, a remote X display, xrdp).
pub fn remote_session_from_env(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    if var("SSH_CONNECTION").is_some() || var("SSH_CLIENT").is_some() {
        return Some("the app runs in an SSH session".into());
    }
    if var("XRDP_SESSION").is_some() {
        return Some("the app runs in a remote desktop (xrdp) session".into());
    }
    if let Some(display) = var("DISPLAY") {
        let host = display.split(':').next().unwrap_or("");
        if !host.is_empty() && host != "localhost" && host != "unix" && !host.starts_with('/') {
            return Some(format!(
                "the screen is on another computer (DISPLAY={display})"
            ));
        }
    }
    None
}

/// The fingerprint of stable machine identifiers: HMAC-SHA256 under a fixed label, cut to
/// 16 bytes, so the identifiers themselves never leave this computer.
pub fn fingerprint_of(identifiers: &[String]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(b"exam-desktop device fingerprint v1") else {
        return String::new();
    };
    for id in identifiers {
        mac.update(id.trim().as_bytes());
        mac.update(&[0]);
    }
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// The network this computer reaches the world through: the default route's interface and
/// gateway, and the gateway's hardware address when known (two networks that both use
/// 192.168.1.1 are told apart by it). A lab machine's changes only when it is moved to
/// another network — what "an unusual location" means for a computer bolted to a desk.
#[derive(Debug, Clone, Eq)]
pub struct NetworkIdentity {
    pub interface: String,
    pub gateway: std::net::Ipv4Addr,
    /// Compared only when both sides know it (an ARP entry comes and goes).
    pub gateway_mac: Option<String>,
}

impl PartialEq for NetworkIdentity {
    fn eq(&self, other: &Self) -> bool {
        self.interface == other.interface
            && self.gateway == other.gateway
            && match (&self.gateway_mac, &other.gateway_mac) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl std::fmt::Display for NetworkIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} via gateway {}", self.interface, self.gateway)
    }
}

/// The default route with the lowest metric, from the text of Linux's `/proc/net/route`
/// (addresses in hex, in the kernel's byte order).
pub fn default_route(route: &str) -> Option<(String, std::net::Ipv4Addr)> {
    route
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (interface, destination, gateway, metric, mask) = (
                *fields.first()?,
                *fields.get(1)?,
                *fields.get(2)?,
                *fields.get(6)?,
                *fields.get(7)?,
            );
            if destination != "00000000" || mask != "00000000" {
                return None;
            }
            let gateway = u32::from_str_radix(gateway, 16).ok()?;
            let metric: u32 = metric.parse().ok()?;
            Some((
                metric,
                interface.to_string(),
                std::net::Ipv4Addr::from(gateway.to_le_bytes()),
            ))
        })
        .min_by_key(|(metric, ..)| *metric)
        .map(|(_, interface, gateway)| (interface, gateway))
}

/// The hardware address of `ip`, from the text of Linux's `/proc/net/arp`.
pub fn arp_address(arp: &str, ip: std::net::Ipv4Addr) -> Option<String> {
    let ip = ip.to_string();
    arp.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let mac = *fields.get(3)?;
        (fields.first() == Some(&ip.as_str()) && mac != "00:00:00:00:00:00")
            .then(|| mac.to_lowercase())
    })
}

/// This computer's network now (Linux; elsewhere unknown, and no finding is made). None
/// without a default route: offline, which the network monitor tells on its own.
pub fn network_identity() -> Option<NetworkIdentity> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let (interface, gateway) = default_route(&std::fs::read_to_string("/proc/net/route").ok()?)?;
    let gateway_mac = std::fs::read_to_string("/proc/net/arp")
        .ok()
        .and_then(|arp| arp_address(&arp, gateway));
    Some(NetworkIdentity {
        interface,
        gateway,
        gateway_mac,
    })
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Reads what is slow to change about this computer.
pub fn machine_facts() -> MachineFacts {
    let dmi: Vec<(&str, String)> = [
        ("system vendor", "/sys/class/dmi/id/sys_vendor"),
        ("product name", "/sys/class/dmi/id/product_name"),
        ("board vendor", "/sys/class/dmi/id/board_vendor"),
        ("BIOS vendor", "/sys/class/dmi/id/bios_vendor"),
    ]
    .into_iter()
    .filter_map(|(name, path)| read_trimmed(path).map(|v| (name, v)))
    .collect();
    let macs: Vec<(String, String)> = sysinfo::Networks::new_with_refreshed_list()
        .map(|networks| {
            networks
                .iter()
                .map(|(name, data)| {
                    (
                        name.to_string_lossy().into_owned(),
                        data.mac_address().to_string(),
                    )
                })
                .filter(|(_, mac)| mac != "00:00:00:00:00:00")
                .collect()
        })
        .unwrap_or_default();
    let mut vm_hints = vm_hints_from_dmi(&dmi);
    vm_hints.extend(vm_hints_from_macs(&macs));
    let hypervisor_flag = read_trimmed("/proc/cpuinfo").is_some_and(|info| {
        info.lines()
            .any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "hypervisor"))
    });
    let identifiers: Vec<String> = [
        "/etc/machine-id",
        "/var/lib/dbus/machine-id",
        "/sys/class/dmi/id/product_uuid",
    ]
    .into_iter()
    .filter_map(read_trimmed)
    .collect();
    MachineFacts {
        vm_hints,
        hypervisor_flag,
        remote_session: remote_session_from_env(|k| std::env::var(k).ok()),
        fingerprint: fingerprint_of(&identifiers),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_machines_are_told_by_their_firmware_strings_and_network_cards() {
        let dmi = [
            ("system vendor", "QEMU".to_string()),
            ("product name", "Standard PC (Q35 + ICH9, 2009)".to_string()),
            ("board vendor", "Dell Inc.".to_string()),
        ];
        let hints = vm_hints_from_dmi(&dmi);
        assert_eq!(hints.len(), 1);
        assert_eq!(hints[0].value, "QEMU");
        let hyperv = [("product name", "Virtual Machine".to_string())];
        assert_eq!(vm_hints_from_dmi(&hyperv).len(), 1);
        let laptop = [
            ("system vendor", "LENOVO".to_string()),
            ("product name", "ThinkPad T14".to_string()),
        ];
        assert!(vm_hints_from_dmi(&laptop).is_empty());

        let macs = [
            ("eth0".to_string(), "52:54:00:12:34:56".to_string()),
            ("wlan0".to_string(), "3C:22:FB:00:11:22".to_string()),
            ("vboxnet".to_string(), "08:00:27:AA:BB:CC".to_string()),
        ];
        let hints = vm_hints_from_macs(&macs);
        assert_eq!(hints.len(), 2);
        assert!(hints[0].value.contains("QEMU"));
        assert!(hints[1].value.contains("VirtualBox"));
    }

    #[test]
    fn remote_sessions_are_told_by_ssh_xrdp_or_a_remote_display() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(remote_session_from_env(env(&[("SSH_CONNECTION", "1 2 3 4")])).is_some());
        assert!(remote_session_from_env(env(&[("XRDP_SESSION", "1")])).is_some());
        assert!(remote_session_from_env(env(&[("DISPLAY", "10.0.0.5:0")])).is_some());
        assert!(remote_session_from_env(env(&[("DISPLAY", ":0")])).is_none());
        assert!(remote_session_from_env(env(&[("DISPLAY", ":99.0")])).is_none());
        assert!(remote_session_from_env(env(&[("DISPLAY", "localhost:0")])).is_none());
        assert!(remote_session_from_env(env(&[])).is_none());
    }

    #[test]
    fn the_fingerprint_hides_the_identifiers_and_changes_with_them() {
        let a = fingerprint_of(&["4c4c4544-0042".into(), "machine-1".into()]);
        let b = fingerprint_of(&["4c4c4544-0042".into(), "machine-2".into()]);
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert_eq!(
            a,
            fingerprint_of(&["4c4c4544-0042".into(), "machine-1".into()])
        );
        assert!(!a.contains("4c4c4544"));
    }

    #[test]
    fn the_network_is_the_default_route_and_its_gateway() {
        let route =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n\
            eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
            eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let (interface, gateway) = default_route(route).unwrap();
        assert_eq!(
            (interface.as_str(), gateway.to_string().as_str()),
            ("eth0", "192.0.2.1")
        );
        assert_eq!(
            default_route("Iface\tDestination\n"),
            None,
            "no default route"
        );
        assert_eq!(default_route("garbage\n\tzz 00000000 XYZ\n"), None);

        let arp =
            "IP address       HW type     Flags       HW address            Mask     Device\n\
                   192.0.2.1        0x1         0x2         02:FC:00:00:00:05     *        eth0\n\
                   192.0.2.9        0x1         0x0         00:00:00:00:00:00     *        eth0\n";
        assert_eq!(
            arp_address(arp, gateway).as_deref(),
            Some("02:fc:00:00:00:05")
        );
        assert_eq!(
            arp_address(arp, "192.0.2.9".parse().unwrap()),
            None,
            "incomplete"
        );

        let here = |mac: Option<&str>| NetworkIdentity {
            interface: "eth0".into(),
            gateway,
            gateway_mac: mac.map(str::to_string),
        };
        assert_eq!(
            here(Some("a")),
            here(None),
            "an ARP entry that came and went"
        );
        assert_ne!(
            here(Some("a")),
            here(Some("b")),
            "another network, same gateway address"
        );
        let wifi = NetworkIdentity {
            interface: "wlan0".into(),
            ..here(None)
        };
        assert_ne!(here(None), wifi);
        assert_eq!(wifi.to_string(), "wlan0 via gateway 192.0.2.1");
    }

    #[test]
    fn a_scan_sees_this_very_process() {
        let mut scanner = ProcessScanner::new();
        let (processes, _) = scanner.scan();
        let me = std::process::id();
        assert!(
            processes.iter().any(|p| p.pid == me),
            "{} processes",
            processes.len()
        );
    }
}
