//! Reading the tools' inputs: ids told apart from names, the conditions
//! `wait_for_stage` knows, the deployment `run` asks for.

use slipway_sdk::{Condition, DeploymentBuilder, Error, proto::Stage};

use super::params::RunParams;

/// Whether `text` is a workload or deployment id rather than a name: 32 hex
/// digits, or a hyphenated UUID.
pub fn looks_like_id(text: &str) -> bool {
    let hex = |text: &str| text.bytes().all(|byte| byte.is_ascii_hexdigit());
    let groups: Vec<usize> = text.split('-').map(str::len).collect();
    (text.len() == 32 && hex(text)) || (groups == [8, 4, 4, 4, 12] && hex(&text.replace('-', "")))
}

/// The condition `wait_for_stage` was asked for.
pub fn parse_condition(text: &str) -> Result<Condition, Error> {
    match text.trim().to_ascii_lowercase().as_str() {
        "healthy" => Ok(Condition::Healthy),
        "terminal" => Ok(Condition::Terminal),
        "settled" => Ok(Condition::Settled),
        other => Stage::from_label(other)
            .map(Condition::Stage)
            .ok_or_else(|| invalid("stage", "a stage (pending, validate, build, deploy, running, stopping, stopped, failed), healthy, terminal or settled")),
    }
}

/// The deployment request `run` makes.
pub fn run_request(
    params: RunParams,
) -> Result<slipway_sdk::proto::CreateDeploymentRequest, Error> {
    let mut builder = DeploymentBuilder::new(params.name.unwrap_or_default())
        .service_path(params.dir.unwrap_or_else(|| ".".to_owned()));
    match (params.command.is_empty(), params.shell, params.image) {
        (false, None, None) => builder = builder.command(params.command),
        (true, Some(shell), None) => {
            builder = builder.command(["sh".to_owned(), "-c".to_owned(), shell])
        }
        (true, None, Some(image)) => builder = builder.image(image),
        (false, None, Some(image)) => builder = builder.image(image).command(params.command),
        _ => {
            return Err(invalid(
                "command",
                "give one of command, shell or image (a command may go with an image)",
            ));
        }
    }
    if params.port {
        builder = match params.container_port {
            Some(port) => builder.container_port(port),
            None => builder.listen(),
        };
        if let Some(path) = params.http_ready_path {
            builder = builder.http_readiness(path);
        }
    }
    for (name, value) in params.env {
        builder = builder.env(name, value);
    }
    if let Some(project) = params.project {
        builder = builder.project(project);
    }
    Ok(builder.build())
}

/// An invalid-argument error of the tool's own checks, naming the field.
fn invalid(field: &str, description: &str) -> Error {
    Error::InvalidArgument {
        message: format!("invalid {field}: {description}"),
        violations: vec![slipway_sdk::FieldViolation {
            field: field.to_owned(),
            description: description.to_owned(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_and_names_are_told_apart() {
        let id = "0123456789abcdef0123456789abcdef";
        assert!(looks_like_id(id));
        assert!(looks_like_id("01234567-89ab-cdef-0123-456789ABCDEF"));
        for name in [
            "web",
            "deployment-0123abcd",
            "0123456789abcdef",
            "01234567-89ab",
        ] {
            assert!(!looks_like_id(name), "{name}");
        }
    }

    #[test]
    fn conditions_are_stages_or_the_named_ones() {
        assert_eq!(
            parse_condition("running").ok(),
            Some(Condition::Stage(Stage::Running))
        );
        assert_eq!(
            parse_condition(" Terminal ").ok(),
            Some(Condition::Terminal)
        );
        assert_eq!(parse_condition("settled").ok(), Some(Condition::Settled));
        match parse_condition("sideways") {
            Err(Error::InvalidArgument { violations, .. }) => {
                assert_eq!(violations[0].field, "stage")
            }
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    fn params(arguments: serde_json::Value) -> RunParams {
        serde_json::from_value(arguments).expect("run parameters")
    }

    #[test]
    fn run_takes_one_of_command_shell_or_image() {
        let request = run_request(params(
            json!({"shell": "echo hi", "port": true, "env": {"A": "1"}}),
        ))
        .expect("a shell line");
        let spec = request.spec.expect("spec");
        assert_eq!(spec.command, ["sh", "-c", "echo hi"]);
        assert!(spec.listen.is_some());
        assert_eq!(spec.env.get("A").map(String::as_str), Some("1"));
        assert_eq!(request.service_path, ".");
        for bad in [json!({}), json!({"command": ["true"], "shell": "true"})] {
            match run_request(params(bad)) {
                Err(Error::InvalidArgument { violations, .. }) => {
                    assert_eq!(violations[0].field, "command")
                }
                other => panic!("expected InvalidArgument, got {other:?}"),
            }
        }
    }
}
