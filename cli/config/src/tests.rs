//! The precedence and the file's checks, on a small command shaped like `serve`. (The
//! environment's place in the order is clap's and is tested on the real binaries,
//! where each process has an environment of its own.)

use super::*;

#[derive(clap::Parser, Debug)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        #[arg(long, default_value_t = 30)]
        interval: u64,
        #[arg(long)]
        demo: bool,
        #[arg(long = "name")]
        names: Vec<String>,
        #[arg(
            long,
            env = "HEALSYNC_CONFIG_TEST_UNSET_SECRET",
            hide_env_values = true
        )]
        secret: Option<String>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    Status,
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("a temporary file");
    std::io::Write::write_all(&mut f, text.as_bytes()).expect("write it");
    f
}

/// Runs `serve` with `args` and the config file `toml`; returns each setting as
/// `name=value@source` (source: cli, file, default).
fn check(args: &[&str], toml: &str, expected: &[&str]) {
    let f = file(toml);
    let path = f.path().to_string_lossy().into_owned();
    let mut argv = vec!["prog", "serve", "--config", &path];
    argv.extend_from_slice(args);
    let layered = parse_from::<Cli, _, _>("serve", argv).expect("parses");
    let got: Vec<String> = layered
        .settings
        .iter()
        .map(|s| {
            let from = match &s.source {
                Source::CommandLine => "cli",
                Source::File(p) if p == f.path() => "file",
                Source::File(_) => "another file",
                Source::Environment(_) => "env",
                Source::Default => "default",
            };
            format!("{}={}@{from}", s.name, s.values.join(","))
        })
        .collect();
    assert_eq!(got, expected, "args {args:?}, file {toml:?}");
}

#[test]
fn the_command_line_wins_over_the_file_which_wins_over_the_defaults() {
    check(
        &[],
        "",
        &[
            "listen=127.0.0.1:8080@default",
            "interval=30@default",
            "demo=false@default",
            "name=@default",
            "secret=@default",
        ],
    );
    check(
        &[],
        "listen = \"0.0.0.0:8443\"\ninterval = 5\ndemo = true\nname = [\"a\", \"b\"]",
        &[
            "listen=0.0.0.0:8443@file",
            "interval=5@file",
            "demo=true@file",
            "name=a,b@file",
            "secret=@default",
        ],
    );
    check(
        &["--listen", "10.0.0.1:1", "--interval=7", "--name", "c"],
        "listen = \"0.0.0.0:8443\"\ninterval = 5\nname = \"a\"",
        &[
            "listen=10.0.0.1:1@cli",
            "interval=7@cli",
            "demo=false@default",
            "name=c@cli",
            "secret=@default",
        ],
    );
}

#[test]
fn the_parsed_command_carries_the_layered_values() {
    let f = file("interval = 9\ndemo = true");
    let path = f.path().to_string_lossy().into_owned();
    let layered =
        parse_from::<Cli, _, _>("serve", ["prog", "serve", "--config", &path]).expect("parses");
    match layered.cli.command {
        Command::Serve { interval, demo, .. } => assert_eq!((interval, demo), (9, true)),
        Command::Status => panic!("parsed the wrong command"),
    }
}

#[test]
fn a_bad_file_is_refused_with_what_is_wrong() {
    let cases: &[(&str, &str)] = &[
        ("lisen = \"x\"", "sets `lisen`, which `serve` does not take"),
        ("demo = \"yes\"", "`demo` in the config file"),
        ("interval = [1, 2]", "must be a string or a number"),
        ("listen = ", "is not valid TOML"),
        ("config = \"other.toml\"", "sets `config`"),
        ("interval = 'x'", "invalid value 'x' for '--interval"),
    ];
    for (toml, says) in cases {
        let f = file(toml);
        let path = f.path().to_string_lossy().into_owned();
        let err =
            parse_from::<Cli, _, _>("serve", ["prog", "serve", "--config", &path]).expect_err(toml);
        assert!(err.to_string().contains(says), "{toml}: {err}");
    }
    let err = parse_from::<Cli, _, _>("serve", ["prog", "serve", "--config", "/nonexistent.toml"])
        .expect_err("a missing file");
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
}

#[test]
fn other_commands_ignore_the_file_and_report_nothing() {
    let layered = parse_from::<Cli, _, _>("serve", ["prog", "status"]).expect("parses");
    assert!(layered.settings.is_empty());
}

#[test]
fn the_rendering_is_a_config_file_that_hides_secrets() {
    let f = file("listen = \"0.0.0.0:8443\"");
    let path = f.path().to_string_lossy().into_owned();
    let layered = parse_from::<Cli, _, _>(
        "serve",
        [
            "prog", "serve", "--config", &path, "--secret", "hunter2", "--demo",
        ],
    )
    .expect("parses");
    let text = layered.render();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(
        text.contains("# secret   (set, secret; from command line)"),
        "{text}"
    );
    assert!(text.contains("demo     = true  # command line"), "{text}");
    // What it prints (secrets and unset options aside) reads back as the same settings.
    let again = file(&text);
    let p = again.path().to_string_lossy().into_owned();
    let reread =
        parse_from::<Cli, _, _>("serve", ["prog", "serve", "--config", &p]).expect("parses");
    let values = |l: &Layered<Cli>| {
        l.settings
            .iter()
            .filter(|s| !s.secret)
            .map(|s| s.values.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(values(&reread), values(&layered));
}
