//! The network of the partition test: four network namespaces (a hub holding a bridge, one per
//! node, each wired to the bridge by a veth pair), the nftables rules that cut links between the
//! nodes, and moving a thread into the hub. Needs root, `ip` and `nft`; [`Network::create`] says
//! why when it cannot run.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::harness::output_text;

pub const NODES: u64 = 3;
/// The nodes are `10.77.0.<id>`, the hub's bridge `10.77.0.254`: private to this run's
/// namespaces, so parallel runs cannot collide.
const SUBNET: &str = "10.77.0";
pub const PORT: u16 = 7100;

pub fn ip_of(id: u64) -> String {
    format!("{SUBNET}.{id}")
}

/// `name` on `PATH` or in the sbin directories (root's tools; `PATH` may lack them).
fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Runs `program ARGS` (with `stdin` as its input, if given); `Err` carries its output.
fn run(program: &Path, args: &[&str], stdin: Option<&str>) -> Result<(), String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("{} {}: {error}", program.display(), args.join(" ")))?;
    if let Some(input) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(input.as_bytes())
            .map_err(|error| format!("writing to {}: {error}", program.display()))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|error| format!("{}: {error}", program.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{} {}` failed ({}): {}",
            program.display(),
            args.join(" "),
            output.status,
            output_text(&output).trim()
        ))
    }
}

/// What is cut between the nodes.
#[derive(Clone, Copy, Debug)]
pub enum Cut {
    /// Every packet between `node` and the other nodes is dropped, both ways.
    Isolate(u64),
    /// `from`'s connections to `to` are lost (its packets to `to`'s port are dropped), while
    /// `to`'s connections to `from` work.
    OneWay { from: u64, to: u64 },
}

/// Four namespaces (a hub with the bridge, one per node), deleted on drop, panic or not. Names
/// carry the process id, so parallel runs never share one, and a later run deletes those of a
/// run that was killed before it could.
pub struct Network {
    prefix: String,
    ip: PathBuf,
    nft: PathBuf,
    created: Vec<String>,
}

const NAMESPACE_PREFIX: &str = "tally-p";

impl Network {
    /// Checks that namespaces and nftables work here (`Err`: why not, for the skip message),
    /// then builds the topology (a failure from there on is a failure of the test).
    pub fn create() -> Result<Network, String> {
        let ip = find_tool("ip").ok_or("`ip` (iproute2) is not installed")?;
        let nft = find_tool("nft").ok_or(
            "`nft` (nftables) is not installed; `scripts/install-deps` installs it as root",
        )?;
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos()
            % 1_000_000;
        let mut network = Network {
            prefix: format!("{NAMESPACE_PREFIX}{}x{nonce}", std::process::id()),
            ip,
            nft,
            created: Vec::new(),
        };
        network.delete_leftovers();
        network
            .add_namespace(&network.hub())
            .map_err(|error| format!("cannot create a network namespace (needs root): {error}"))?;
        for id in 1..=NODES {
            network
                .add_namespace(&network.node(id))
                .map_err(|error| format!("cannot create a network namespace: {error}"))?;
        }
        network
            .nft_in(1, "add table inet probe\ndelete table inet probe\n")
            .map_err(|error| {
                format!("nftables does not work inside a network namespace: {error}")
            })?;
        network.wire();
        Ok(network)
    }

    fn hub(&self) -> String {
        format!("{}-hub", self.prefix)
    }

    fn node(&self, id: u64) -> String {
        format!("{}-n{id}", self.prefix)
    }

    /// The file a thread opens to enter the hub.
    /// The command prefix that runs a program in node `id`'s namespace (`ip netns exec NS`).
    pub fn launcher(&self, id: u64) -> Vec<std::ffi::OsString> {
        let mut launcher = vec![self.ip.clone().into_os_string()];
        launcher.extend(["netns", "exec", &self.node(id)].map(std::ffi::OsString::from));
        launcher
    }

    pub fn hub_path(&self) -> PathBuf {
        Path::new("/var/run/netns").join(self.hub())
    }

    fn add_namespace(&mut self, name: &str) -> Result<(), String> {
        run(&self.ip, &["netns", "add", name], None)?;
        self.created.push(name.to_string());
        Ok(())
    }

    /// Deletes the namespaces of runs whose process is gone (killed before it could clean up),
    /// ending the nodes that run on in them first.
    fn delete_leftovers(&self) {
        let Ok(output) = Command::new(&self.ip).args(["netns", "list"]).output() else {
            return;
        };
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or_default();
            let Some(rest) = name.strip_prefix(NAMESPACE_PREFIX) else {
                continue;
            };
            let pid = rest.split('x').next().unwrap_or_default();
            if !pid.is_empty()
                && pid.bytes().all(|byte| byte.is_ascii_digit())
                && !Path::new("/proc").join(pid).exists()
            {
                if let Ok(pids) = Command::new(&self.ip)
                    .args(["netns", "pids", name])
                    .output()
                {
                    for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                        let _ = Command::new("kill").args(["-9", pid]).status();
                    }
                }
                let _ = run(&self.ip, &["netns", "del", name], None);
            }
        }
    }

    /// `ip -n NS ARGS`, which must succeed.
    fn ip_in(&self, namespace: &str, args: &[&str]) {
        let mut all = vec!["-n", namespace];
        all.extend_from_slice(args);
        run(&self.ip, &all, None).unwrap_or_else(|error| panic!("{error}"));
    }

    /// Runs the nftables `script` in node `id`'s namespace.
    fn nft_in(&self, id: u64, script: &str) -> Result<(), String> {
        let nft = self.nft.to_string_lossy();
        run(
            &self.ip,
            &["netns", "exec", &self.node(id), &nft, "-f", "-"],
            Some(script),
        )
    }

    /// The bridge `br0` (`SUBNET.254`) in the hub; node N's `eth0` (`SUBNET.N`) on it through a
    /// veth pair; in each node an nftables table whose chains start empty.
    fn wire(&self) {
        let hub = self.hub();
        self.ip_in(&hub, &["link", "set", "lo", "up"]);
        self.ip_in(&hub, &["link", "add", "br0", "type", "bridge"]);
        self.ip_in(
            &hub,
            &["addr", "add", &format!("{SUBNET}.254/24"), "dev", "br0"],
        );
        self.ip_in(&hub, &["link", "set", "br0", "up"]);
        for id in 1..=NODES {
            let node = self.node(id);
            let port = format!("v{id}");
            self.ip_in(
                &hub,
                &[
                    "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &node,
                ],
            );
            self.ip_in(&hub, &["link", "set", &port, "master", "br0", "up"]);
            self.ip_in(&node, &["link", "set", "lo", "up"]);
            self.ip_in(
                &node,
                &["addr", "add", &format!("{}/24", ip_of(id)), "dev", "eth0"],
            );
            self.ip_in(&node, &["link", "set", "eth0", "up"]);
            self.nft_in(
                id,
                "add table inet cut\n\
                 add chain inet cut input { type filter hook input priority 0; policy accept; }\n\
                 add chain inet cut output { type filter hook output priority 0; policy accept; }\n",
            )
            .unwrap_or_else(|error| panic!("{error}"));
        }
    }

    /// Replaces node `id`'s rules with `input` and `output` drop rules, atomically.
    fn set_rules(&self, id: u64, input: &[String], output: &[String]) {
        let mut script = String::from("flush chain inet cut input\nflush chain inet cut output\n");
        for rule in input {
            script.push_str(&format!("add rule inet cut input {rule} drop\n"));
        }
        for rule in output {
            script.push_str(&format!("add rule inet cut output {rule} drop\n"));
        }
        self.nft_in(id, &script)
            .unwrap_or_else(|error| panic!("{error}"));
    }

    pub fn cut(&self, cut: Cut) {
        eprintln!("partition: cut {cut:?}");
        match cut {
            Cut::Isolate(node) => {
                let others: Vec<String> = (1..=NODES).filter(|id| *id != node).map(ip_of).collect();
                let others = others.join(", ");
                self.set_rules(
                    node,
                    &[format!("ip saddr {{ {others} }}")],
                    &[format!("ip daddr {{ {others} }}")],
                );
            }
            Cut::OneWay { from, to } => {
                self.set_rules(
                    from,
                    &[],
                    &[format!("ip daddr {} tcp dport {PORT}", ip_of(to))],
                );
            }
        }
    }

    pub fn heal(&self) {
        eprintln!("partition: heal");
        for id in 1..=NODES {
            self.set_rules(id, &[], &[]);
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for name in self.created.iter().rev() {
            if let Err(error) = run(&self.ip, &["netns", "del", name], None) {
                eprintln!("partition: cleaning up: {error}");
            }
        }
    }
}

/// Moves the calling thread into the network namespace at `path`.
pub fn enter(path: &Path) {
    let file = std::fs::File::open(path)
        .unwrap_or_else(|error| panic!("open {}: {error}", path.display()));
    rustix::thread::move_into_link_name_space(
        file.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .unwrap_or_else(|error| panic!("enter {}: {error}", path.display()));
}
