//! Short lowercase names for the protocol's enums, as people read them
//! (`running`, `stdout`), and their parsing back.

use crate::v1::{Action, Health, Stage, Stream};

impl Stage {
    /// The stage's short name: `pending`, `validate`, … `failed`.
    pub fn label(self) -> &'static str {
        match self {
            Stage::Unspecified => "unspecified",
            Stage::Pending => "pending",
            Stage::Validate => "validate",
            Stage::Build => "build",
            Stage::Deploy => "deploy",
            Stage::Running => "running",
            Stage::Stopping => "stopping",
            Stage::Stopped => "stopped",
            Stage::Failed => "failed",
        }
    }

    /// Parses a short name (`running`) or a full one (`STAGE_RUNNING`), any case.
    pub fn from_label(text: &str) -> Option<Stage> {
        let upper = text.trim().to_ascii_uppercase();
        let full = if upper.starts_with("STAGE_") {
            upper
        } else {
            format!("STAGE_{upper}")
        };
        Stage::from_str_name(&full).filter(|stage| *stage != Stage::Unspecified)
    }
}

impl Health {
    /// `unknown`, `healthy` or `unhealthy`.
    pub fn label(self) -> &'static str {
        match self {
            Health::Unspecified | Health::Unknown => "unknown",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

impl Action {
    /// `start`, `stop`, `restart` or `delete`.
    pub fn label(self) -> &'static str {
        match self {
            Action::Unspecified => "unspecified",
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Restart => "restart",
            Action::Delete => "delete",
        }
    }
}

impl Stream {
    /// `stdout`, `stderr` or `system`.
    pub fn label(self) -> &'static str {
        match self {
            Stream::Unspecified => "unspecified",
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::System => "system",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_labels_round_trip() {
        for value in 1..=8 {
            let stage = Stage::try_from(value).expect("known stage");
            assert_eq!(Stage::from_label(stage.label()), Some(stage));
            assert_eq!(Stage::from_label(stage.as_str_name()), Some(stage));
        }
        assert_eq!(Stage::from_label("unspecified"), None);
        assert_eq!(Stage::from_label("sleeping"), None);
    }
}
