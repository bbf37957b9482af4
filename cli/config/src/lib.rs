//! One precedence for the settings of the two binaries' long-running command (`serve`):
//! **the command line, then the environment, then the config file, then the built-in
//! default**. The config file is TOML whose keys are the command's long options
//! (`listen = "0.0.0.0:8443"`, `tls = true`, `tls-name = ["clinic.lan"]`), so a setting
//! has one name everywhere: `--listen`, `HEALSYNC_LISTEN`, `listen`.
//!
//! It works on clap's own description of the command: a file's values become the
//! options' defaults before parsing (so clap's rule, flag over environment over default,
//! gives the precedence), and clap's record of where each value came from is what
//! [`Layered::render`] prints for `--print-config`, with secrets (options whose
//! environment values clap hides) never shown.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::ArgAction;
use clap::parser::ValueSource;

/// The options every layered command takes: where its config file is, and whether to
/// print the effective settings instead of running.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ConfigArgs {
    /// A TOML file of settings, keyed by this command's long options
    /// (`listen = "0.0.0.0:8443"`). The command line wins over the environment, which
    /// wins over this file, which wins over the defaults.
    #[arg(long, env = "HEALSYNC_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the effective settings, each with where it came from (secrets hidden),
    /// and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// Where a setting's value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    CommandLine,
    Environment(String),
    File(PathBuf),
    Default,
}

/// One setting of the command, as it will run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The long option's name (and the config file's key).
    pub name: String,
    /// Its values; empty when it is not set.
    pub values: Vec<String>,
    /// A flag (`true`/`false`), printed bare.
    pub flag: bool,
    /// A secret: its value is never printed.
    pub secret: bool,
    pub source: Source,
}

/// The parsed command line, and how the layered command's settings were arrived at.
#[derive(Debug)]
pub struct Layered<T> {
    pub cli: T,
    /// The settings of `subcommand` when it was the command run; empty otherwise.
    pub settings: Vec<Setting>,
    subcommand: String,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("could not read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error(
        "the config file {path} sets `{key}`, which `{command}` does not take (its settings are its long options: {known})"
    )]
    Unknown {
        path: PathBuf,
        key: String,
        command: String,
        known: String,
    },
    #[error("`{key}` in the config file {path} must be {expected}")]
    BadValue {
        path: PathBuf,
        key: String,
        expected: &'static str,
    },
    /// The command line itself is wrong, or asks for help: [`clap::Error::exit`] says so.
    #[error(transparent)]
    Clap(#[from] clap::Error),
}

/// Options that are about the configuration, not settings of it.
const NOT_SETTINGS: [&str; 4] = ["config", "print-config", "help", "version"];

/// Parses the process's arguments as [`parse_from`] does.
pub fn parse<T: clap::Parser>(subcommand: &str) -> Result<Layered<T>, ConfigError> {
    parse_from(subcommand, std::env::args_os())
}

/// Parses `args` into `T`, layering the config file under the options of `subcommand`
/// (a subcommand of `T` that flattens [`ConfigArgs`]) when it is the one run.
pub fn parse_from<T, I, S>(subcommand: &str, args: I) -> Result<Layered<T>, ConfigError>
where
    T: clap::Parser,
    I: IntoIterator<Item = S>,
    S: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut command = T::command();
    let runs_it = args
        .iter()
        .skip(1)
        .find(|a| !a.to_string_lossy().starts_with('-'))
        .is_some_and(|a| a == subcommand);
    let mut from_file = Vec::new();
    let mut file_path = None;
    let file = command
        .find_subcommand(subcommand)
        .filter(|_| runs_it)
        .and_then(|sub| config_path(sub, &args).map(|path| (sub, path)))
        .map(|(sub, path)| file_defaults(sub, &path).map(|defaults| (path, defaults)))
        .transpose()?;
    if let Some((path, defaults)) = file {
        for (id, values) in defaults {
            command = command.mut_subcommand(subcommand, |s| {
                s.mut_arg(&id, |a| a.default_values(values).required(false))
            });
            from_file.push(id);
        }
        file_path = Some(path);
    }
    let matches = command.clone().try_get_matches_from(&args)?;
    let cli = T::from_arg_matches(&matches)?;
    let mut settings = Vec::new();
    // In the command's own order (giving an option a default moves it to the end).
    let original = T::command();
    if let (Some(sub), Some(m)) = (
        original.find_subcommand(subcommand),
        matches.subcommand_matches(subcommand),
    ) {
        for arg in sub.get_arguments() {
            let Some(name) = arg.get_long() else { continue };
            if NOT_SETTINGS.contains(&name) || arg.is_hide_set() {
                continue;
            }
            let id = arg.get_id().as_str();
            let source = match m.value_source(id) {
                Some(ValueSource::CommandLine) => Source::CommandLine,
                Some(ValueSource::EnvVariable) => Source::Environment(
                    arg.get_env()
                        .map(|e| e.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                ),
                Some(ValueSource::DefaultValue) if from_file.iter().any(|f| f == id) => {
                    Source::File(file_path.clone().unwrap_or_default())
                }
                _ => Source::Default,
            };
            let values = m
                .get_raw(id)
                .map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect())
                .unwrap_or_default();
            settings.push(Setting {
                name: name.to_string(),
                values,
                flag: is_flag(arg),
                secret: arg.is_hide_env_values_set(),
                source,
            });
        }
    }
    Ok(Layered {
        cli,
        settings,
        subcommand: subcommand.to_string(),
    })
}

fn is_flag(arg: &clap::Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse)
}

/// `--config FILE` or `--config=FILE` on the command line, else the option's
/// environment variable.
fn config_path(sub: &clap::Command, args: &[OsString]) -> Option<PathBuf> {
    let mut it = args.iter().map(|a| a.to_string_lossy());
    while let Some(a) = it.next() {
        if a == "--config" {
            return it.next().map(|p| PathBuf::from(p.as_ref()));
        }
        if let Some(p) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(p));
        }
    }
    let env = sub
        .get_arguments()
        .find(|a| a.get_long() == Some("config"))
        .and_then(|a| a.get_env())?;
    std::env::var_os(env)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The file's settings as option ids and their values, checked against the options.
fn file_defaults(
    sub: &clap::Command,
    path: &Path,
) -> Result<Vec<(String, Vec<String>)>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.message().to_string(),
        })?;
    let settable = |a: &&clap::Arg| a.get_long().is_some_and(|l| !NOT_SETTINGS.contains(&l));
    let mut out = Vec::new();
    for (key, value) in table {
        let Some(arg) = sub
            .get_arguments()
            .filter(settable)
            .find(|a| a.get_long() == Some(key.as_str()))
        else {
            let known: Vec<&str> = sub
                .get_arguments()
                .filter(settable)
                .filter(|a| !a.is_hide_set())
                .filter_map(|a| a.get_long())
                .collect();
            return Err(ConfigError::Unknown {
                path: path.to_path_buf(),
                key,
                command: sub.get_name().to_string(),
                known: known.join(", "),
            });
        };
        let bad = |expected| ConfigError::BadValue {
            path: path.to_path_buf(),
            key: key.clone(),
            expected,
        };
        let values = if is_flag(arg) {
            match value {
                toml::Value::Boolean(b) => vec![b.to_string()],
                _ => return Err(bad("true or false")),
            }
        } else if matches!(arg.get_action(), ArgAction::Append) {
            match value {
                toml::Value::Array(items) => items
                    .into_iter()
                    .map(|v| scalar(v).ok_or_else(|| bad("a list of strings or numbers")))
                    .collect::<Result<_, _>>()?,
                v => vec![scalar(v).ok_or_else(|| bad("a string or a list of strings"))?],
            }
        } else {
            vec![scalar(value).ok_or_else(|| bad("a string or a number"))?]
        };
        out.push((arg.get_id().as_str().to_string(), values));
    }
    Ok(out)
}

fn scalar(v: toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        _ => None,
    }
}

/// What a binary's `main` does first: parse (layering the config file under
/// `subcommand`), or say why not and give the exit code to stop with: clap's own for
/// help and usage errors, 2 for a bad config file, 0 once `--print-config` (when
/// `wants_print` says the parsed command asked for it) has printed the settings.
pub fn parse_or_exit<T: clap::Parser>(
    subcommand: &str,
    wants_print: impl FnOnce(&T) -> bool,
) -> Result<T, std::process::ExitCode> {
    match parse::<T>(subcommand) {
        Ok(layered) if wants_print(&layered.cli) => {
            print!("{}", layered.render());
            Err(std::process::ExitCode::SUCCESS)
        }
        Ok(layered) => Ok(layered.cli),
        Err(ConfigError::Clap(e)) => e.exit(),
        Err(e) => {
            eprintln!("error: {e}");
            Err(std::process::ExitCode::from(2))
        }
    }
}

impl<T> Layered<T> {
    /// The effective settings as a config file (so it can be kept as one), each line
    /// saying where its value came from; secrets and unset options as comments.
    pub fn render(&self) -> String {
        let mut out = format!(
            "# The settings `{}` runs with. Precedence: command line, then environment,\n# then config file, then default.\n",
            self.subcommand
        );
        let width = self
            .settings
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(0);
        for s in &self.settings {
            let from = match &s.source {
                Source::CommandLine => "command line".to_string(),
                Source::Environment(var) => format!("environment {var}"),
                Source::File(path) => format!("config file {}", path.display()),
                Source::Default => "default".to_string(),
            };
            if s.values.is_empty() {
                out.push_str(&format!("# {:width$} (not set)\n", s.name));
            } else if s.secret {
                out.push_str(&format!("# {:width$} (set, secret; from {from})\n", s.name));
            } else {
                let quoted: Vec<String> = s
                    .values
                    .iter()
                    .map(|v| if s.flag { v.clone() } else { toml_string(v) })
                    .collect();
                let value = if quoted.len() == 1 {
                    quoted[0].clone()
                } else {
                    format!("[{}]", quoted.join(", "))
                };
                out.push_str(&format!("{:width$} = {value}  # {from}\n", s.name));
            }
        }
        out
    }
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests;
