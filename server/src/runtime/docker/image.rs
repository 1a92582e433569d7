//! The image a container runs: the deployment's image, pulled when the engine
//! lacks it, or one built from the service directory's Dockerfile.

use std::collections::HashMap;

use bollard::{
    errors::Error as DockerError,
    query_parameters::{BuildImageOptionsBuilder, CreateImageOptionsBuilder},
};
use futures::StreamExt;

use super::{DockerRuntime, context, engine_error, labels};
use crate::{
    domain::{LogLevel, LogStream},
    logs::LogSink,
    runtime::{RunContext, RuntimeError},
};

/// The tag of the image built for a deployment: `slipway/<name>:<id prefix>`.
pub fn image_tag(context: &RunContext) -> String {
    let mut name: String = context
        .deployment_name
        .to_ascii_lowercase()
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || "._-".contains(character) {
                character
            } else {
                '-'
            }
        })
        .collect();
    name = name
        .trim_start_matches(|character: char| !character.is_ascii_alphanumeric())
        .to_owned();
    if name.is_empty() {
        name = "deployment".to_owned();
    }
    format!("slipway/{name}:{}", context.deployment_id.short())
}

/// The image a workload's container runs: the spec's image, else the one built
/// for its deployment.
pub(super) fn image_of(context: &RunContext) -> String {
    match &context.spec.image {
        Some(image) => image.clone(),
        None => image_tag(context),
    }
}

/// `name[:tag]` → (name, tag), `latest` when no tag is given.
fn split_reference(image: &str) -> (&str, &str) {
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (image, "latest"),
    }
}

impl DockerRuntime {
    /// Makes sure the engine has `image`, pulling it when it has not.
    pub(super) async fn pull(&self, image: &str, logs: &LogSink) -> Result<(), RuntimeError> {
        let docker = self.docker().await?;
        if docker.inspect_image(image).await.is_ok() {
            logs.system(LogLevel::Info, format!("image {image} is present"))
                .await;
            return Ok(());
        }
        logs.system(
            LogLevel::Info,
            format!("image {image} is not present, pulling it"),
        )
        .await;
        let (name, tag) = split_reference(image);
        let options = CreateImageOptionsBuilder::new()
            .from_image(name)
            .tag(tag)
            .build();
        let mut progress = docker.create_image(Some(options), None, None);
        let mut last_status = String::new();
        while let Some(item) = progress.next().await {
            match item {
                Ok(info) => {
                    if let Some(status) = info.status {
                        // Layer progress repeats the same status many times; keep one line each.
                        let line = match info.id {
                            Some(id) => format!("{id}: {status}"),
                            None => status,
                        };
                        if line != last_status {
                            logs.output(LogStream::Stdout, line.clone()).await;
                            last_status = line;
                        }
                    }
                }
                Err(error) => {
                    let reason = match error {
                        DockerError::DockerStreamError { error } => error,
                        DockerError::DockerResponseServerError { message, .. } => message,
                        other => other.to_string(),
                    };
                    return Err(RuntimeError::Build(format!(
                        "image {image} is not present locally and could not be pulled: {reason}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Builds the deployment's image from `dockerfile` in the service directory;
    /// the builder's output goes to `logs`.
    pub(super) async fn build_image(
        &self,
        context: &RunContext,
        dockerfile: &str,
        logs: &LogSink,
    ) -> Result<(), RuntimeError> {
        let docker = self.docker().await?;
        let directory = context.service_dir.clone();
        let dockerfile_name = dockerfile.to_owned();
        let tar = tokio::task::spawn_blocking(move || {
            context::build_context(&directory, &dockerfile_name)
        })
        .await
        .map_err(|error| RuntimeError::Build(format!("making the build context failed: {error}")))?
        .map_err(|source| RuntimeError::Io {
            context: "making the build context".to_owned(),
            source,
        })?;
        let tag = image_tag(context);
        logs.system(
            LogLevel::Info,
            format!(
                "building {tag} from {dockerfile} ({} bytes of context)",
                tar.len()
            ),
        )
        .await;
        let image_labels = HashMap::from([(labels::DEPLOYMENT, context.deployment_id.to_string())]);
        let options = BuildImageOptionsBuilder::new()
            .dockerfile(dockerfile)
            .t(&tag)
            .labels(&image_labels)
            .rm(true)
            .forcerm(true)
            .build();
        let mut output = docker.build_image(options, None, Some(bollard::body_full(tar.into())));
        while let Some(item) = output.next().await {
            let info = match item {
                Ok(info) => info,
                Err(DockerError::DockerStreamError { error }) => {
                    return Err(RuntimeError::Build(format!("docker build failed: {error}")));
                }
                Err(error) => return Err(engine_error("building the image", error)),
            };
            if let Some(text) = info.stream {
                for line in text.lines().filter(|line| !line.trim().is_empty()) {
                    logs.output(LogStream::Stdout, line.to_owned()).await;
                }
            }
            if let Some(detail) = info.error_detail {
                let message = detail.message.unwrap_or_else(|| "unknown error".to_owned());
                logs.output(LogStream::Stderr, message.clone()).await;
                return Err(RuntimeError::Build(format!(
                    "docker build failed: {message}"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_name_and_tag() {
        assert_eq!(split_reference("busybox"), ("busybox", "latest"));
        assert_eq!(
            split_reference("local/busybox:1.36"),
            ("local/busybox", "1.36")
        );
        assert_eq!(
            split_reference("registry:5000/app"),
            ("registry:5000/app", "latest")
        );
    }
}
