//! Packaging as a technician and an operator meet it: the container entrypoints run as
//! plain processes (the same scripts the images run: a hub that registers two clinics
//! and leaves their tokens, two demo nodes started together that enroll themselves),
//! the Debian package built and taken apart, its systemd unit verified by systemd, and
//! the compose file and Kubernetes manifests validated against their schemas. (There is
//! no Docker engine here: what only a real `docker compose up` would show is listed in
//! packaging/README.md.)

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use healsync_test_support::{ADMIN_PASSWORD, Gql, TestDatabase};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::{binary, eventually, hub_binary};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A packaging script running as a plain process, with the binaries on its PATH.
struct Script {
    child: Child,
    /// What it printed before the line it was waited for.
    lines: Vec<String>,
}

impl Script {
    /// Starts `script` with `env` and `args`, and waits (up to two minutes) for a line of
    /// standard output containing `ready`.
    async fn start(
        script: &str,
        env: &[(&str, &str)],
        args: &[&str],
        ready: &str,
    ) -> Result<(Script, String)> {
        let hub = hub_binary().await?;
        let bins = [binary(), hub.as_path()]
            .iter()
            .filter_map(|b| b.parent().map(Path::to_path_buf))
            .collect::<Vec<_>>();
        let path = std::env::join_paths(bins.into_iter().chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )))?;
        let mut child = Command::new(root().join(script))
            .args(args)
            .envs(env.iter().copied())
            .env("PATH", path)
            .env("HEALSYNC_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("HEALSYNC_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // Its own process group, so that dropping it ends the server it started too.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {script}"))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let mut reader = BufReader::new(stdout).lines();
        let mut lines = Vec::new();
        let found = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(line) = reader.next_line().await? {
                if line.contains(ready) {
                    return Ok::<_, anyhow::Error>(line);
                }
                lines.push(line);
            }
            bail!("{script} ended before {ready:?}: {lines:?}")
        })
        .await
        .map_err(|_| anyhow!("{script} printed no {ready:?} within 120 s"))??;
        tokio::spawn(async move { while let Ok(Some(_)) = reader.next_line().await {} });
        Ok((Script { child, lines }, found))
    }

    /// SIGTERM (the container's stop), then the exit status.
    async fn stop(mut self) -> Result<bool> {
        let pid = self.child.id().ok_or_else(|| anyhow!("already ended"))?;
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await?;
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .map_err(|_| anyhow!("did not stop within 30 s of SIGTERM"))??;
        Ok(status.success())
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        }
    }
}

/// The word after `marker` in `line`.
fn after(line: &str, marker: &str) -> Result<String> {
    line.split(marker)
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .map(|s| s.trim_end_matches('/').to_string())
        .ok_or_else(|| anyhow!("no {marker:?} in {line:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_container_entrypoints_bring_up_a_hub_and_two_demo_clinics_that_enroll_themselves()
-> Result<()> {
    let db = TestDatabase::create("packaging").await?;
    let hub_dir = tempfile::tempdir()?;
    let tokens = tempfile::tempdir()?;
    let (hub_data, token_dir) = (
        hub_dir.path().to_string_lossy().into_owned(),
        tokens.path().to_string_lossy().into_owned(),
    );
    let hub_env = [
        ("DATABASE_URL", db.url.as_str()),
        ("HEALSYNC_HUB_DATA_DIR", hub_data.as_str()),
        ("HEALSYNC_HUB_LISTEN", "127.0.0.1:0"),
        ("HEALSYNC_HUB_SYNC_LISTEN", "127.0.0.1:0"),
        ("HEALSYNC_SITES", "NBO=Nairobi Clinic,MSA=Mombasa Clinic"),
        ("HEALSYNC_TOKEN_DIR", token_dir.as_str()),
    ];
    let (hub, banner) = Script::start(
        "packaging/docker/hub-entrypoint.sh",
        &hub_env,
        &[],
        "serving sync on ",
    )
    .await?;
    let (sync_addr, hub_http) = (after(&banner, "sync on ")?, after(&banner, "HTTP on ")?);

    // Both clinics start at once, as compose starts them: each waits for its token.
    let node_dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
    let start = |site: &'static str, dir: String| {
        let (sync_addr, token_dir) = (sync_addr.clone(), token_dir.clone());
        async move {
            let env = [
                ("HEALSYNC_DATA_DIR", dir.as_str()),
                ("HEALSYNC_LISTEN", "127.0.0.1:0"),
                ("HEALSYNC_SITE", site),
                ("HEALSYNC_HUB", sync_addr.as_str()),
                ("HEALSYNC_TOKEN_DIR", token_dir.as_str()),
            ];
            Script::start(
                "packaging/docker/node-entrypoint.sh",
                &env,
                &["--demo", "--sync-interval", "1"],
                "serving on ",
            )
            .await
        }
    };
    let dir = |i: usize| node_dirs[i].path().to_string_lossy().into_owned();
    let (nairobi, mombasa) = tokio::try_join!(start("NBO", dir(0)), start("MSA", dir(1)))?;
    let mut nodes = vec![];
    for ((node, line), site) in [(nairobi, "NBO"), (mombasa, "MSA")] {
        let base = after(&line, "serving on ")?;
        assert!(
            node.lines.iter().any(|l| l.contains("Enrolled node"))
                && node.lines.iter().any(|l| l.contains("Demo accounts")),
            "{site} was not enrolled and seeded: {:?}",
            node.lines
        );
        let gql = Gql::new(&base);
        let (status, ready) = gql.get("/readyz").await?;
        assert_eq!(status, 200, "{site}: {ready}");
        let admin = gql.login("admin", ADMIN_PASSWORD).await?;
        let me = admin.ok("{ node { site } }", json!({})).await?;
        assert_eq!(me["node"]["site"], site);
        nodes.push((node, admin, site));
    }
    let (status, ready) = Gql::new(&hub_http).get("/readyz").await?;
    assert_eq!(status, 200, "hub: {ready}");

    // Both enrolled and syncing: the hub has heard from each.
    let hub_bin = hub_binary().await?;
    eventually("both clinics sync with the hub", || {
        let (hub_bin, url) = (hub_bin.clone(), db.url.clone());
        async move {
            let out = healsync_test_support::run(
                &hub_bin,
                &["nodes", "list", "--json", "--database-url", &url],
                None,
            )
            .await?;
            let list: Value = serde_json::from_slice(&out.stdout)?;
            let synced = list.as_array().map_or(0, |l| {
                l.iter().filter(|n| !n["lastSyncUnix"].is_null()).count()
            });
            Ok((synced == 2).then_some(()))
        }
    })
    .await?;
    // Each clinic's demo bookings reach the hub.
    let central = Gql::new(&hub_http).login("admin", ADMIN_PASSWORD).await?;
    eventually("the hub holds both clinics' appointments", || async {
        let all = central.ok("{ appointments { site } }", json!({})).await?;
        let sites: std::collections::BTreeSet<String> = all["appointments"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|a| a["site"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        Ok((sites.contains("NBO") && sites.contains("MSA")).then_some(()))
    })
    .await?;

    // Restarts: the hub leaves the tokens as they were; a node does not enroll again.
    let token = std::fs::read_to_string(tokens.path().join("NBO.token"))?;
    assert!(
        hub.stop().await?,
        "the hub's entrypoint stops cleanly on SIGTERM"
    );
    let (hub, _) = Script::start(
        "packaging/docker/hub-entrypoint.sh",
        &hub_env,
        &[],
        "serving sync on ",
    )
    .await?;
    assert_eq!(
        std::fs::read_to_string(tokens.path().join("NBO.token"))?,
        token
    );
    let (first, admin, _) = nodes.remove(0);
    drop(admin);
    assert!(
        first.stop().await?,
        "the node's entrypoint stops cleanly on SIGTERM"
    );
    let (again, _) = start("NBO", dir(0)).await?;
    assert!(
        !again.lines.iter().any(|l| l.contains("Enrolled node")),
        "{:?}",
        again.lines
    );
    drop(again);
    drop(nodes);
    drop(hub);
    db.drop_database().await?;
    Ok(())
}

/// Runs a command that must succeed; returns (stdout, stderr).
async fn ok(program: &str, args: &[&str]) -> Result<(String, String)> {
    let out = healsync_test_support::run(Path::new(program), args, None)
        .await
        .with_context(|| format!("is {program} installed?"))?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    if !out.status.success() {
        bail!("{program} {args:?} failed: {stdout}{stderr}");
    }
    Ok((stdout, stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deb_installs_the_node_with_a_hardened_unit_and_its_configuration() -> Result<()> {
    let out = tempfile::tempdir()?;
    let o = out.path().to_string_lossy().into_owned();
    let b = binary().to_string_lossy().into_owned();
    let script = root().join("packaging/deb/build.sh");
    let (built, _) = ok(
        &script.to_string_lossy(),
        &["--binary", &b, "--out", &o, "--compression", "gzip"],
    )
    .await?;
    let deb = built.trim().to_string();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        deb.ends_with(&format!("healsync-node_{version}_amd64.deb")) || deb.contains(version),
        "{deb}"
    );

    let (info, _) = ok("dpkg-deb", &["--info", &deb]).await?;
    for line in [
        "Package: healsync-node",
        &format!("Version: {version}"),
        "Depends: libc6 (>= 2.34), adduser",
    ] {
        assert!(info.contains(line), "{line} not in\n{info}");
    }
    let (conffiles, _) = ok("dpkg-deb", &["--field", &deb, "Package"]).await?;
    assert_eq!(conffiles.trim(), "healsync-node");

    // What it installs, with which modes.
    let (contents, _) = ok("dpkg-deb", &["--contents", &deb]).await?;
    for (mode, path) in [
        ("-rwxr-xr-x root/root", "./usr/bin/healsync-node"),
        (
            "-rw-r--r-- root/root",
            "./lib/systemd/system/healsync-node.service",
        ),
        ("-rw-r--r-- root/root", "./etc/healsync/node.toml"),
        ("-rw-r----- root/root", "./etc/healsync/node.env"),
        (
            "-rw-r--r-- root/root",
            "./usr/share/doc/healsync-node/copyright",
        ),
    ] {
        assert!(
            contents
                .lines()
                .any(|l| l.starts_with(mode) && l.ends_with(path)),
            "{mode} {path} not in\n{contents}"
        );
    }
    assert!(
        !contents.contains("var/lib/healsync"),
        "the data directory is systemd's to make"
    );

    let x = tempfile::tempdir()?;
    let xs = x.path().to_string_lossy().into_owned();
    ok("dpkg-deb", &["--extract", &deb, &xs]).await?;
    ok("dpkg-deb", &["--control", &deb, &format!("{xs}/DEBIAN")]).await?;
    let conffiles = std::fs::read_to_string(x.path().join("DEBIAN/conffiles"))?;
    assert_eq!(
        conffiles,
        "/etc/healsync/node.toml\n/etc/healsync/node.env\n"
    );
    let postinst = std::fs::read_to_string(x.path().join("DEBIAN/postinst"))?;
    assert!(
        postinst.contains("adduser --system")
            && postinst.contains("chmod 0640 /etc/healsync/node.env")
    );

    // The unit: a dedicated account, restarts, and the hardening asked for.
    let unit = std::fs::read_to_string(x.path().join("lib/systemd/system/healsync-node.service"))?;
    for directive in [
        "User=healsync",
        "ExecStart=/usr/bin/healsync-node serve --config /etc/healsync/node.toml",
        "EnvironmentFile=-/etc/healsync/node.env",
        "Restart=on-failure",
        "StateDirectory=healsync",
        "StateDirectoryMode=0700",
        "ProtectSystem=strict",
        "NoNewPrivileges=true",
        "PrivateTmp=true",
    ] {
        assert!(
            unit.lines().any(|l| l == directive),
            "{directive} not in the unit"
        );
    }
    // systemd itself finds nothing wrong with it (an unknown directive is only a
    // warning to systemd: any output fails here), with ExecStart pointed at the
    // extracted binary so that it exists.
    let exe = x.path().join("usr/bin/healsync-node");
    let check = x.path().join("healsync-node.service");
    std::fs::write(
        &check,
        unit.replace("/usr/bin/healsync-node", &exe.to_string_lossy()),
    )?;
    let (stdout, stderr) = ok("systemd-analyze", &["verify", &check.to_string_lossy()]).await?;
    assert_eq!(
        (stdout.trim(), stderr.trim()),
        ("", ""),
        "systemd-analyze verify"
    );
    let (security, _) = ok(
        "systemd-analyze",
        &[
            "security",
            "--offline=true",
            "--no-pager",
            &check.to_string_lossy(),
        ],
    )
    .await?;
    let exposure: f64 = security
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for healsync-node.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| anyhow!("no exposure level in\n{security}"))?;
    assert!(
        exposure <= 4.0,
        "systemd rates the unit's exposure {exposure} (at most 4.0 expected)"
    );

    // The shipped settings are ones the packaged binary accepts, from the file.
    let toml = x.path().join("etc/healsync/node.toml");
    let (effective, _) = ok(
        &exe.to_string_lossy(),
        &[
            "serve",
            "--config",
            &toml.to_string_lossy(),
            "--print-config",
        ],
    )
    .await?;
    let from_file = format!("# config file {}", toml.display());
    for setting in ["data-dir", "listen", "tls"] {
        assert!(
            effective
                .lines()
                .any(|l| l.starts_with(&format!("{setting} ")) && l.ends_with(&from_file)),
            "{setting} is not taken from the file:\n{effective}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_file_and_kubernetes_manifests_validate_against_their_schemas() -> Result<()> {
    let validate = root().join("packaging/validate.sh");
    let (report, _) = ok(&validate.to_string_lossy(), &[]).await?;
    assert!(report.contains("packaging validated"), "{report}");

    // The validators do refuse a mistake (so the check above can fail).
    let tools = root().join("target/packaging-tools/bin");
    let dir = tempfile::tempdir()?;
    let compose = std::fs::read_to_string(root().join("docker-compose.yml"))?;
    let bad_compose = dir.path().join("docker-compose.yml");
    std::fs::write(&bad_compose, compose.replacen("restart:", "restrat:", 1))?;
    let refused = Command::new(tools.join("check-jsonschema"))
        .args(["--builtin-schema", "vendor.compose-spec"])
        .arg(&bad_compose)
        .output()
        .await?;
    assert!(
        !refused.status.success(),
        "a misspelt compose key was accepted"
    );
    let k8s = std::fs::read_to_string(root().join("packaging/k8s/hub.yaml"))?;
    let bad_k8s = dir.path().join("hub.yaml");
    std::fs::write(
        &bad_k8s,
        k8s.replacen("readinessProbe:", "readinesProbe:", 1),
    )?;
    let refused = Command::new(tools.join("kubernetes-validate"))
        .args(["--strict", "--quiet", "-k", "1.37.0"])
        .arg(&bad_k8s)
        .output()
        .await?;
    assert!(
        !refused.status.success(),
        "a misspelt manifest field was accepted"
    );
    Ok(())
}

#[test]
fn the_dockerfile_copies_what_exists_and_builds_the_workspaces_binaries() -> Result<()> {
    let dockerfile = std::fs::read_to_string(root().join("packaging/docker/Dockerfile"))?;
    for line in dockerfile
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from="))
    {
        let words: Vec<&str> = line
            .split_whitespace()
            .filter(|w| !w.starts_with("--"))
            .collect();
        for src in &words[1..words.len() - 1] {
            assert!(root().join(src).exists(), "{line}: {src} does not exist");
        }
    }
    let members = std::fs::read_to_string(root().join("Cargo.toml"))?;
    for (package, manifest) in [
        ("healsync-node", "cli/Cargo.toml"),
        ("healsync-hub", "hub/cli/Cargo.toml"),
    ] {
        assert!(
            dockerfile.contains(&format!("-p {package}")),
            "{package} is not built"
        );
        let text = std::fs::read_to_string(root().join(manifest))?;
        assert!(
            text.contains(&format!("name = \"{package}\"")),
            "{manifest}"
        );
        let dir = manifest.trim_end_matches("/Cargo.toml");
        assert!(
            members.contains(&format!("\"{dir}\"")),
            "{dir} is not a workspace member"
        );
    }
    // The health checks ask what the servers answer.
    assert!(
        dockerfile.matches("/readyz").count() == 2,
        "both images check readiness"
    );
    Ok(())
}

/// `serve --print-config` of `bin` with `env` and `args` (a config file `toml` given
/// with --config): the line of each setting in `expect`.
async fn check_precedence(
    bin: &Path,
    toml: &str,
    env: &[(&str, &str)],
    args: &[&str],
    expect: &[(&str, &str)],
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("settings.toml");
    std::fs::write(&file, toml)?;
    let out = Command::new(bin)
        .args([
            "serve",
            "--config",
            &file.to_string_lossy(),
            "--print-config",
        ])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .await?;
    let text =
        String::from_utf8_lossy(&out.stdout).replace(&file.to_string_lossy().into_owned(), "FILE");
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (name, line) in expect {
        let got = text
            .lines()
            .find(|l| l.trim_start_matches("# ").starts_with(&format!("{name} ")))
            .map(|l| {
                let l = l.trim_start_matches("# ");
                l.split_whitespace().collect::<Vec<_>>().join(" ")
            });
        assert_eq!(
            got.as_deref(),
            Some(*line),
            "{name} (env {env:?}, args {args:?})\n{text}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_takes_each_setting_from_the_command_line_then_environment_then_file() -> Result<()> {
    let node = binary();
    let file =
        "listen = \"127.0.0.1:1111\"\nsync-interval = 7\nsmtp-url = \"smtp://u:pw@relay:25\"\n";
    check_precedence(
        node,
        file,
        &[],
        &[],
        &[
            ("listen", "listen = \"127.0.0.1:1111\" # config file FILE"),
            ("sync-interval", "sync-interval = \"7\" # config file FILE"),
            ("idle-minutes", "idle-minutes = \"30\" # default"),
            ("smtp-url", "smtp-url (set, secret; from config file FILE)"),
        ],
    )
    .await?;
    check_precedence(
        node,
        file,
        &[
            ("HEALSYNC_LISTEN", "127.0.0.1:2222"),
            ("HEALSYNC_SYNC_INTERVAL", "9"),
        ],
        &["--sync-interval", "11"],
        &[
            (
                "listen",
                "listen = \"127.0.0.1:2222\" # environment HEALSYNC_LISTEN",
            ),
            ("sync-interval", "sync-interval = \"11\" # command line"),
        ],
    )
    .await?;
    let hub = hub_binary().await?;
    check_precedence(
        &hub,
        "database-url = \"postgres://hub:secret@db/hub\"\nmax-sessions = 4\n",
        &[("HEALSYNC_HUB_MAX_SESSIONS", "8")],
        &[],
        &[
            (
                "database-url",
                "database-url (set, secret; from config file FILE)",
            ),
            (
                "max-sessions",
                "max-sessions = \"8\" # environment HEALSYNC_HUB_MAX_SESSIONS",
            ),
        ],
    )
    .await?;
    // A mistake in the file stops the server before it starts, saying where.
    let dir = tempfile::tempdir()?;
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "lisen = \"0.0.0.0:8443\"\n")?;
    let out = Command::new(node)
        .args(["serve", "--config", &bad.to_string_lossy()])
        .output()
        .await?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("sets `lisen`, which `serve` does not take"),
        "{err}"
    );
    Ok(())
}
