//! The `roster` command line: serve (default), worker, migrate, admin create, check-config,
//! sync, secrets rotate.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use roster::accounts::{self, FirstAdmin};
use roster::config::Settings;
use roster::db::DbConnection;
use roster::startup::Application;
use roster::state::AppState;
use roster::sync::RunStatus;
use secrecy::{ExposeSecret, SecretString};

#[derive(Parser)]
#[command(name = "roster", version, about = "Directory-synced sign-in portal")]
struct Cli {
    /// Configuration file (default: roster.toml in the working directory, if present).
    #[arg(long, global = true, env = "ROSTER_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web server and the scheduler (the default).
    Serve {
        /// Only the web server: scheduled synchronisations are left to other instances
        /// (`roster worker`, or a `roster serve` without this flag).
        #[arg(long)]
        no_scheduler: bool,
    },
    /// Run only the scheduler: scheduled synchronisations, no web server.
    Worker,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage administrators.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Check the configuration and the database connection, then exit.
    CheckConfig,
    /// Synchronise a directory profile (by name or id) now; `--dry-run` only shows the plan.
    Sync {
        profile: String,
        /// Compute and print the plan without changing anything.
        #[arg(long)]
        dry_run: bool,
        /// Also print each user, group and membership change.
        #[arg(long)]
        plan: bool,
    },
    /// Manage the master key that encrypts stored secrets.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Re-encrypt every stored secret under a new master key, written to a new file.
    Rotate {
        /// Where to write the new key (must not exist yet; created with mode 0600).
        #[arg(long)]
        new_key_file: PathBuf,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an administrator; the password is read from standard input.
    Create { name: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    roster::install_crypto_provider();
    let (path, explicit) = match &cli.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from("roster.toml"), false),
    };
    let settings = match Settings::load(&path, explicit) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("roster: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&settings.log);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("roster: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve {
            no_scheduler: false,
        }) {
            Command::Serve { no_scheduler } => serve(settings, !no_scheduler).await,
            Command::Worker => worker(settings).await,
            Command::Migrate => migrate(&settings),
            Command::CheckConfig => check_config(&settings),
            Command::Admin {
                command: AdminCommand::Create { name },
            } => admin_create(settings, &name).await,
            Command::Secrets {
                command: SecretsCommand::Rotate { new_key_file },
            } => rotate_secrets(settings, &new_key_file).await,
            Command::Sync {
                profile,
                dry_run,
                plan,
            } => sync(settings, &profile, dry_run, plan).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roster: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Log lines go to standard error (standard output is the commands' own answer), with
    // colour only on a terminal.
    let stderr = std::io::stderr();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&stderr))
        .with_writer(std::io::stderr)
        .try_init();
}

async fn serve(settings: Settings, scheduler: bool) -> anyhow::Result<()> {
    let base = base_url(&settings);
    let backend_note = format!(
        "{} ({})",
        roster::db::Backend::from_url(settings.database_url.expose_secret())
            .map(|b| b.name())
            .unwrap_or("?"),
        settings.database_url_masked()
    );
    let state = tokio::task::spawn_blocking(move || AppState::open(settings)).await??;
    let first_admin = accounts::ensure_first_admin(&state).await?;
    roster::jobs::session_cleanup::spawn(
        state.db.clone(),
        state.session_policy.idle_seconds,
        state.throttle_policy.window_seconds,
    );
    if scheduler {
        spawn_scheduler(&state);
    }
    let app = Application::build(state)?;
    let base = base.replace(":0", &format!(":{}", app.port()));
    println!("Roster is running at {base}/ on {backend_note}");
    match first_admin {
        FirstAdmin::SetupLink(path) => {
            println!("No administrator yet. Open this one-time link to choose the admin password:");
            println!("  {base}{path}");
        }
        FirstAdmin::Created => {
            println!(
                "Sign in at {base}/login as `admin` with the password from ROSTER_ADMIN_PASSWORD."
            )
        }
        FirstAdmin::AlreadyThere => println!("Sign in at {base}/login."),
    }
    app.run_until_stopped().await?;
    Ok(())
}

/// Where people open Roster: the public URL, or the listen address (a wildcard shown as
/// localhost).
fn base_url(settings: &Settings) -> String {
    if let Some(url) = &settings.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let listen = settings
        .listen
        .replace("0.0.0.0:", "localhost:")
        .replace("[::]:", "localhost:");
    format!("http://{listen}")
}

fn spawn_scheduler(state: &AppState) {
    let every = Duration::from_secs(u64::from(state.settings.scheduler_interval_seconds));
    tokio::spawn(roster::jobs::scheduler::run(
        state.sync_context(),
        every,
        std::future::pending(),
    ));
}

/// The scheduler alone, until SIGINT or SIGTERM.
async fn worker(settings: Settings) -> anyhow::Result<()> {
    let state = tokio::task::spawn_blocking(move || AppState::open(settings)).await??;
    roster::jobs::session_cleanup::spawn(
        state.db.clone(),
        state.session_policy.idle_seconds,
        state.throttle_policy.window_seconds,
    );
    let every = Duration::from_secs(u64::from(state.settings.scheduler_interval_seconds));
    println!(
        "Roster worker: running scheduled synchronisations (checking every {} s).",
        every.as_secs()
    );
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    };
    roster::jobs::scheduler::run(state.sync_context(), every, shutdown).await;
    println!("Roster worker stopped.");
    Ok(())
}

/// Exits non-zero unless the run succeeded: a failed run, and a held one (nothing applied).
/// A dry run that an applied run would hold has succeeded: it only says so.
async fn sync(
    settings: Settings,
    profile: &str,
    dry_run: bool,
    show_plan: bool,
) -> anyhow::Result<()> {
    let state = tokio::task::spawn_blocking(move || AppState::open(settings)).await??;
    let wanted = profile.to_owned();
    let found = state
        .db
        .run(move |c| {
            roster::db::models::directory_profiles::find_by_name_or_id(c, &wanted)
                .map_err(anyhow::Error::from)
        })
        .await?
        .ok_or_else(|| anyhow::anyhow!("there is no directory profile `{profile}`"))?;
    let ctx = state.sync_context();
    let outcome = roster::sync::run(
        &ctx,
        found.id,
        roster::sync::Trigger::Cli,
        "command line",
        dry_run,
    )
    .await?;
    let what = if dry_run { "Dry run" } else { "Run" };
    println!(
        "{what} {} of `{}`: {}",
        outcome.run_id, found.name, outcome.status
    );
    if let Some(plan) = &outcome.plan {
        // Only a run that applied did what it says; the others say what it would do.
        let applied = outcome.status == RunStatus::Succeeded && !dry_run;
        println!("{}", cli_summary(plan, applied));
        if show_plan {
            let profile_id = found.id;
            let known = state
                .db
                .run(move |c| {
                    use roster::db::models::{directory_groups, users};
                    let mut names: std::collections::HashMap<String, String> =
                        users::synced_by_profile(c, profile_id)?
                            .into_iter()
                            .map(|u| (u.external_id, u.username))
                            .collect();
                    names.extend(
                        directory_groups::synced_by_profile(c, profile_id)?
                            .into_iter()
                            .map(|g| (g.external_id, g.name)),
                    );
                    Ok::<_, anyhow::Error>(names)
                })
                .await?;
            print!("{}", cli_changes(plan, known));
        }
        for warning in &plan.warnings {
            println!("warning: {warning}");
        }
        if let Some(reason) = &plan.held {
            if dry_run {
                println!("note: a run that applies would be held for approval: {reason}");
            } else {
                anyhow::bail!(
                    "held for approval, nothing was applied: {reason}. Approve or discard it in the admin console (run {}).",
                    outcome.run_id
                );
            }
        }
    }
    if outcome.status == RunStatus::Cancelled {
        anyhow::bail!("the run was cancelled by an admin, nothing was changed");
    }
    match outcome.error {
        Some(error) => anyhow::bail!("the synchronisation failed, nothing was changed: {error}"),
        None => Ok(()),
    }
}

/// One line of counts, in the past tense once applied.
fn cli_summary(plan: &roster::sync::plan::Plan, applied: bool) -> String {
    use roster::sync::plan::Action;
    let [create, update, delete, add, remove] = if applied {
        ["created", "updated", "deleted", "added", "removed"]
    } else {
        ["to create", "to update", "to delete", "to add", "to remove"]
    };
    format!(
        "users: {} {create}, {} {update}, {} {delete}, {} unchanged; groups: {} {create}, {} {update}, {} {delete}; memberships: {} {add}, {} {remove}",
        plan.count(Action::Create),
        plan.count(Action::Update),
        plan.count(Action::Delete),
        plan.users_unchanged,
        plan.group_count(Action::Create),
        plan.group_count(Action::Update),
        plan.group_count(Action::Delete),
        plan.memberships_added.len(),
        plan.memberships_removed.len(),
    )
}

/// `--plan`: a line per change.
/// `known`: external id → name of what the profile already holds (memberships name them).
fn cli_changes(
    plan: &roster::sync::plan::Plan,
    mut known: std::collections::HashMap<String, String>,
) -> String {
    use roster::sync::plan::Action;
    let verb = |a: Action| match a {
        Action::Create => "create",
        Action::Update => "update",
        Action::Delete => "delete",
    };
    let mut out = String::new();
    for u in &plan.users {
        let renamed = u
            .previous_username
            .as_deref()
            .map(|p| format!(" (was {p})"))
            .unwrap_or_default();
        let fields = if u.fields.is_empty() {
            String::new()
        } else {
            format!(": {}", u.fields.join(", "))
        };
        out.push_str(&format!(
            "user {} {}{renamed}{fields}\n",
            verb(u.action),
            u.username
        ));
    }
    for g in &plan.groups {
        out.push_str(&format!("group {} {}\n", verb(g.action), g.name));
    }
    known.extend(
        plan.users
            .iter()
            .map(|u| (u.external_id.clone(), u.username.clone()))
            .chain(
                plan.groups
                    .iter()
                    .map(|g| (g.external_id.clone(), g.name.clone())),
            ),
    );
    let name = |id: &str| known.get(id).map(String::as_str).unwrap_or(id).to_owned();
    for (sign, list) in [
        ("+", &plan.memberships_added),
        ("-", &plan.memberships_removed),
    ] {
        for (group, user) in list.iter() {
            out.push_str(&format!(
                "membership {sign} {} in {}\n",
                name(user),
                name(group)
            ));
        }
    }
    out
}

fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let url = settings.database_url.expose_secret();
    let mut conn = DbConnection::open_explained(url)?;
    let applied = conn.run_migrations()?;
    println!(
        "{applied} migration(s) applied; {} is up to date.",
        settings.database_url_masked()
    );
    Ok(())
}

fn check_config(settings: &Settings) -> anyhow::Result<()> {
    // The settings serialise with secrets masked.
    println!("{}", toml_of(settings)?);
    DbConnection::open_explained(settings.database_url.expose_secret())?;
    if let Some(key) = &settings.master_key {
        roster::crypto::MasterKey::from_base64(key.expose_secret())?;
    }
    println!("Configuration is valid and the database answers.");
    Ok(())
}

fn toml_of(settings: &Settings) -> anyhow::Result<String> {
    let value = serde_json::to_value(settings)?;
    let mut out = String::new();
    if let serde_json::Value::Object(map) = value {
        for (k, v) in map {
            if !v.is_null() {
                out.push_str(&format!("{k} = {v}\n"));
            }
        }
    }
    Ok(out)
}

async fn admin_create(settings: Settings, name: &str) -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = SecretString::from(line.trim_end_matches(['\r', '\n']).to_owned());
    let state = tokio::task::spawn_blocking(move || AppState::open(settings)).await??;
    accounts::create_from_cli(&state, name, password).await?;
    println!("Administrator `{}` created.", name.trim());
    Ok(())
}

async fn rotate_secrets(settings: Settings, new_key_file: &std::path::Path) -> anyhow::Result<()> {
    let state = tokio::task::spawn_blocking(move || AppState::open(settings)).await??;
    let new_key = roster::crypto::MasterKey::generate();
    roster::crypto::write_key_file(new_key_file, &new_key)?;
    let old_key = state.master_key.clone();
    let rotated = {
        let new_key = new_key.clone();
        state
            .db
            .run(move |c| {
                roster::secrets::rotate(c, &old_key, &new_key).map_err(anyhow::Error::from)
            })
            .await
    };
    match rotated {
        Ok(count) => {
            println!(
                "Re-encrypted {count} secret(s) under the new key {} in {}.",
                new_key.id(),
                new_key_file.display()
            );
            println!(
                "Configure it before the next start (ROSTER_MASTER_KEY_FILE={}, or replace the old key file); the old key no longer opens anything.",
                new_key_file.display()
            );
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(new_key_file);
            Err(e.context("nothing was changed; the old key stays in use"))
        }
    }
}
