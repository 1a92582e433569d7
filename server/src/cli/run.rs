//! `slipway run`: create a deployment and a workload, start it, and (in the
//! foreground) show its stages and follow its logs until Ctrl-C stops it.

use std::{
    io::{IsTerminal, Write},
    time::Duration,
};

use futures::StreamExt;
use slipway_sdk::{
    Client, DeploymentBuilder, Liveness, Progress, ProgressStream,
    proto::{Stage, Workload},
};

use super::{
    args::RunArgs,
    deploy::create_deployment,
    error::{CliError, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK},
    logs::{LineFilter, LineStyle, print_logs},
    output::outln,
    output::{Printer, colour_wanted, paint, short_id},
};

/// How stage changes are shown on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DisplayMode {
    /// A spinner on the current stage, a line per finished stage (a terminal).
    Spinner,
    /// One plain line per stage (not a terminal).
    Lines,
    /// Nothing.
    Quiet,
}

/// Shows a workload's stages on stderr as they happen.
#[derive(Debug)]
pub struct StageDisplay {
    mode: DisplayMode,
    colour: bool,
    current: Option<Stage>,
    frame: usize,
}

const SPINNER_FRAMES: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

impl StageDisplay {
    /// A spinner on a terminal, else nothing (for commands whose stdout is an id).
    pub fn for_stderr(printer: Printer) -> StageDisplay {
        let terminal = std::io::stderr().is_terminal() && !printer.json();
        StageDisplay::new(if terminal {
            DisplayMode::Spinner
        } else {
            DisplayMode::Quiet
        })
    }

    /// A spinner on a terminal, else plain lines (for the foreground `run`).
    fn for_foreground() -> StageDisplay {
        StageDisplay::new(if std::io::stderr().is_terminal() {
            DisplayMode::Spinner
        } else {
            DisplayMode::Lines
        })
    }

    fn new(mode: DisplayMode) -> StageDisplay {
        StageDisplay {
            mode,
            colour: colour_wanted(std::io::stderr().is_terminal()),
            current: None,
            frame: 0,
        }
    }

    /// The workload is now in `stage`.
    fn stage(&mut self, stage: Stage) {
        if self.current == Some(stage) {
            return;
        }
        self.finish_current();
        self.current = Some(stage);
        match self.mode {
            DisplayMode::Spinner => self.tick(),
            DisplayMode::Lines => eprintln!("[slipway] {}", stage.label()),
            DisplayMode::Quiet => {}
        }
    }

    /// Advances the spinner.
    fn tick(&mut self) {
        if self.mode != DisplayMode::Spinner {
            return;
        }
        if let Some(stage) = self.current {
            let frame = SPINNER_FRAMES[self.frame % SPINNER_FRAMES.len()];
            self.frame += 1;
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[2K{frame} {}…", stage.label());
            let _ = stderr.flush();
        }
    }

    /// Replaces the spinner with a line for the stage that ended.
    fn finish_current(&mut self) {
        if self.mode != DisplayMode::Spinner {
            return;
        }
        if let Some(stage) = self.current.take() {
            let mark = match stage {
                Stage::Failed => paint(self.colour, "\x1b[31m", "✗"),
                _ => paint(self.colour, "\x1b[32m", "✓"),
            };
            eprintln!("\r\x1b[2K{mark} {}", stage.label());
        }
    }

    /// Ends the display (the last stage gets its line).
    fn done(&mut self) {
        self.finish_current();
    }

    /// Prints a line above the spinner.
    fn message(&mut self, text: &str) {
        if self.mode == DisplayMode::Spinner {
            eprint!("\r\x1b[2K");
        }
        eprintln!("{text}");
    }
}

/// How following a progress stream ended.
enum ProgressEnd {
    /// The operation reached its goal; the final workload.
    Finished(Box<Workload>),
    /// It did not ([`slipway_sdk::Error::OperationFailed`]).
    Failed(slipway_sdk::Error),
    Interrupted,
}

/// Reads a progress stream to its end, showing each stage; with `interruptible`
/// a Ctrl-C ends it early.
async fn show_progress(
    mut progress: ProgressStream,
    display: &mut StageDisplay,
    interruptible: bool,
) -> Result<ProgressEnd, CliError> {
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    let mut last = None;
    let interrupt = async {
        if interruptible {
            let _ = tokio::signal::ctrl_c().await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(interrupt);
    loop {
        tokio::select! {
            next = progress.next() => match next {
                Some(Ok(Progress::Workload(workload))) => {
                    display.stage(workload.stage());
                    last = Some(Box::new(workload));
                }
                Some(Ok(Progress::Log(_))) => {}
                Some(Err(error @ slipway_sdk::Error::OperationFailed(_))) => {
                    display.stage(Stage::Failed);
                    display.done();
                    return Ok(ProgressEnd::Failed(error));
                }
                Some(Err(error)) => {
                    display.done();
                    return Err(CliError::server("the operation failed", error));
                }
                None => break,
            },
            _ = ticker.tick() => display.tick(),
            () = &mut interrupt => {
                display.done();
                return Ok(ProgressEnd::Interrupted);
            }
        }
    }
    display.done();
    last.map(ProgressEnd::Finished)
        .ok_or_else(|| CliError::Failed {
            message: "the server ended the operation without a result".to_owned(),
        })
}

/// Starts a workload, showing its stages, and returns it once RUNNING; a start
/// that ends FAILED is an error naming the stage and the reason.
pub async fn start_and_show(
    client: &Client,
    workload_id: &str,
    mut display: StageDisplay,
) -> Result<Workload, CliError> {
    let progress = client
        .start_workload(workload_id)
        .await
        .map_err(|error| CliError::server("cannot start the workload", error))?;
    match show_progress(progress, &mut display, false).await? {
        ProgressEnd::Finished(workload) => Ok(*workload),
        ProgressEnd::Failed(error) => Err(not_started(workload_id, error)),
        ProgressEnd::Interrupted => Err(CliError::Failed {
            message: "interrupted".to_owned(),
        }),
    }
}

/// The error of a start that did not reach RUNNING.
fn not_started(workload_id: &str, error: slipway_sdk::Error) -> CliError {
    CliError::server(
        format!("workload {} did not start", short_id(workload_id)),
        error,
    )
}

/// Refuses what the server cannot do before anything is created.
pub fn check_args(args: &RunArgs) -> Result<(), CliError> {
    restart_policy(&args.restart).map_err(CliError::usage)?;
    if args.command.is_empty() && args.image.is_none() && args.dockerfile.is_none() {
        return Err(CliError::usage(
            "nothing to run: give a command after --, or --image / --dockerfile",
        ));
    }
    Ok(())
}

/// The deployment request `slipway run` sends; env and secret files are read
/// here.
pub fn deployment_request(
    args: &RunArgs,
) -> Result<slipway_sdk::proto::CreateDeploymentRequest, CliError> {
    let mut builder =
        DeploymentBuilder::new(args.name.clone().unwrap_or_default()).service_path(&args.path);
    if !args.command.is_empty() {
        builder = builder.command(args.command.clone());
    }
    if let Some(image) = &args.image {
        builder = builder.image(image);
    }
    if let Some(dockerfile) = &args.dockerfile {
        builder = builder.dockerfile(dockerfile);
    }
    for path in &args.env_file {
        for (name, value) in read_env_file(path)? {
            builder = builder.env(name, value);
        }
    }
    for (name, value) in &args.env {
        builder = builder.env(name, value);
    }
    for (name, value) in &args.secret {
        builder = builder.secret_env(name, value);
    }
    for (name, path) in &args.secret_file {
        let value = std::fs::read_to_string(path).map_err(|source| CliError::Io {
            context: "cannot read the secret file",
            path: path.into(),
            source,
        })?;
        let value = value
            .strip_suffix('\n')
            .map(|value| value.strip_suffix('\r').unwrap_or(value))
            .unwrap_or(&value);
        builder = builder.secret_env(name, value);
    }
    if let Some(signal) = &args.stop_signal {
        builder = builder.stop_signal(signal);
    }
    if let Some(seconds) = args.stop_timeout {
        builder = builder.stop_grace_period_seconds(seconds);
    }
    if let Some(readiness) = &args.readiness {
        builder = match readiness.as_str() {
            "tcp" => builder.tcp_readiness(),
            "none" => builder.no_readiness(),
            other => match other.strip_prefix("http:") {
                Some(path) if path.starts_with('/') => builder.http_readiness(path),
                _ => {
                    return Err(CliError::usage(format!(
                        "--readiness {other:?}: expected tcp, none or http:/PATH"
                    )));
                }
            },
        };
    }
    for (key, value) in &args.labels {
        builder = builder.label(key, value);
    }
    builder = match args.port {
        None => builder,
        Some(None) => builder.listen(),
        Some(Some(container_port)) => builder.container_port(container_port),
    };
    if let Ok(Some(policy)) = restart_policy(&args.restart) {
        builder = builder.restart_policy(policy);
    }
    if let Some(user) = &args.user {
        builder = builder.user(user);
    }
    if args.memory.is_some() || args.cpus.is_some() {
        builder = builder.resources(args.memory.unwrap_or(0), args.cpus.unwrap_or(0));
    }
    if let Some(files) = args.max_open_files {
        builder = builder.max_open_files(files);
    }
    for (key, value) in &args.node_selector {
        builder = builder.node_selector(key, value);
    }
    if let Some(command) = &args.health.health_cmd {
        let mut check = Liveness::shell(command);
        if let Some(interval) = args.health.health_interval {
            check = check.interval(interval);
        }
        if let Some(timeout) = args.health.health_timeout {
            check = check.timeout(timeout);
        }
        if let Some(retries) = args.health.health_retries {
            check = check.failure_threshold(retries);
        }
        builder = builder.liveness(check);
    }
    Ok(builder.build())
}

/// The variables of a Docker-style env file: `NAME=VALUE` lines, blank lines
/// and `#` comments skipped, a bare `NAME` taking this shell's value (left out
/// when unset).
fn read_env_file(path: &std::path::Path) -> Result<Vec<(String, String)>, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
        context: "cannot read the env file",
        path: path.to_owned(),
        source,
    })?;
    let mut variables = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((name, value)) if !name.trim().is_empty() => {
                variables.push((name.trim().to_owned(), value.to_owned()));
            }
            Some(_) => {
                return Err(CliError::usage(format!(
                    "{}:{}: expected NAME=VALUE",
                    path.display(),
                    index + 1
                )));
            }
            None => {
                let name = line.trim();
                if let Ok(value) = std::env::var(name) {
                    variables.push((name.to_owned(), value));
                }
            }
        }
    }
    Ok(variables)
}

/// Docker's `--restart` values: `no`, `on-failure[:MAX]`, `always`,
/// `unless-stopped` (the same as `always`: a stop on request is never undone).
pub fn restart_policy(text: &str) -> Result<Option<slipway_sdk::proto::RestartPolicy>, String> {
    use slipway_sdk::proto::{RestartPolicy, restart_policy::Mode};
    let (name, max) = match text.split_once(':') {
        Some((name, max)) => (name, Some(max)),
        None => (text, None),
    };
    let mode = match name {
        "no" | "never" => {
            return if max.is_none() {
                Ok(None)
            } else {
                Err(restart_usage(text))
            };
        }
        "on-failure" => Mode::OnFailure,
        "always" | "unless-stopped" if max.is_none() => Mode::Always,
        _ => return Err(restart_usage(text)),
    };
    let max_restarts = match max {
        Some(max) => max.parse::<u32>().map_err(|_| restart_usage(text))?,
        None => 0,
    };
    Ok(Some(RestartPolicy {
        mode: mode.into(),
        max_restarts,
        ..RestartPolicy::default()
    }))
}

fn restart_usage(text: &str) -> String {
    format!("--restart {text}: expected no, on-failure[:MAX], always or unless-stopped")
}

/// `slipway run`.
pub async fn run(client: &Client, printer: Printer, args: RunArgs) -> Result<u8, CliError> {
    check_args(&args)?;
    let deployment = create_deployment(client, deployment_request(&args)?).await?;
    let workload = client
        .create_workload(&deployment.id)
        .await
        .map_err(|error| CliError::server("cannot create a workload", error))?;
    if args.detach {
        let running =
            start_and_show(client, &workload.id, StageDisplay::for_stderr(printer)).await?;
        if printer.json() {
            let view = super::view::WorkloadView::new(&running, Some(&deployment.name));
            printer.print_json(&view)?;
        } else {
            outln!("{}", running.id);
        }
        return Ok(EXIT_OK);
    }
    let style = LineStyle::new(printer, false, args.control_chars);
    let ended = foreground(client, style, &workload.id, &deployment.name).await;
    if args.rm {
        // As `docker run --rm`: nothing is left once the run is over.
        client
            .delete_deployment(&deployment.id)
            .await
            .map_err(|error| CliError::server("cannot remove the deployment (--rm)", error))?;
    }
    ended
}

/// Shows the start, then follows the log in `style`; Ctrl-C stops the workload.
async fn foreground(
    client: &Client,
    style: LineStyle,
    workload_id: &str,
    deployment_name: &str,
) -> Result<u8, CliError> {
    let mut display = StageDisplay::for_foreground();
    display.message(&format!(
        "[slipway] workload {} of deployment {deployment_name}",
        short_id(workload_id)
    ));
    let progress = client
        .start_workload(workload_id)
        .await
        .map_err(|error| CliError::server("cannot start the workload", error))?;
    match show_progress(progress, &mut display, true).await? {
        ProgressEnd::Interrupted => return stop_on_interrupt(client, workload_id, display).await,
        ProgressEnd::Finished(_) => {}
        ProgressEnd::Failed(error) => {
            // Show what the workload printed, then why it failed.
            let _ = print_logs(
                client,
                workload_id,
                None,
                false,
                &LineFilter::default(),
                style,
            )
            .await;
            return Err(not_started(workload_id, error));
        }
    }
    let no_filter = LineFilter::default();
    let following = print_logs(client, workload_id, None, true, &no_filter, style);
    tokio::select! {
        result = following => result?,
        _ = tokio::signal::ctrl_c() => {
            return stop_on_interrupt(client, workload_id, display).await;
        }
    }
    // The log ended: the workload stopped or failed on its own (or was stopped elsewhere).
    let workload = client
        .get_workload(workload_id)
        .await
        .map_err(|error| CliError::server("cannot get the workload", error))?;
    // As `docker run`: the workload's own exit code when it has one.
    let code = workload
        .exit_code
        .map(|code| u8::try_from(code).unwrap_or(EXIT_FAILED));
    match workload.stage() {
        Stage::Failed => {
            display.message(&format!(
                "slipway: workload {} failed: {}",
                short_id(workload_id),
                workload.error
            ));
            Ok(code.filter(|code| *code != EXIT_OK).unwrap_or(EXIT_FAILED))
        }
        stage => {
            display.message(&format!("[slipway] workload {}", stage.label()));
            Ok(code.unwrap_or(EXIT_OK))
        }
    }
}

/// Ctrl-C in the foreground: stop the workload (a second Ctrl-C leaves it stopping).
async fn stop_on_interrupt(
    client: &Client,
    workload_id: &str,
    mut display: StageDisplay,
) -> Result<u8, CliError> {
    display.message(&format!(
        "[slipway] stopping {} (Ctrl-C again to leave it stopping)",
        short_id(workload_id)
    ));
    let progress = client
        .stop_workload(workload_id, None)
        .await
        .map_err(|error| CliError::server("cannot stop the workload", error))?;
    match show_progress(progress, &mut display, true).await? {
        ProgressEnd::Finished(workload) if workload.stage() == Stage::Stopped => {
            display.message(&format!("[slipway] {} stopped", short_id(workload_id)));
            Ok(EXIT_INTERRUPTED)
        }
        ProgressEnd::Finished(workload) => {
            display.message(&format!(
                "[slipway] {} ended {}: {}",
                short_id(workload_id),
                workload.stage().label(),
                workload.error
            ));
            Ok(EXIT_FAILED)
        }
        ProgressEnd::Failed(error) => {
            display.message(&format!("[slipway] {}: {error}", short_id(workload_id)));
            Ok(EXIT_FAILED)
        }
        ProgressEnd::Interrupted => Ok(EXIT_INTERRUPTED),
    }
}
