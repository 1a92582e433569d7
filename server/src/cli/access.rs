//! `slipway token …` and `slipway audit`.

use chrono::Utc;
use slipway_sdk::{
    Client, NewToken,
    proto::{AuditRecord, ListAuditRequest, TokenInfo},
};

use super::{
    args::{AuditArgs, TokenCommand},
    error::{CliError, EXIT_OK},
    logs::{parse_duration_seconds, parse_time},
    output::{Printer, print_table, rfc3339},
};

pub async fn token(
    client: &Client,
    printer: Printer,
    command: TokenCommand,
) -> Result<u8, CliError> {
    match command {
        TokenCommand::Create {
            name,
            role,
            projects,
            expires_in,
        } => {
            let expires_in = match expires_in {
                Some(text) => Some(
                    parse_duration_seconds(&text)
                        .and_then(|seconds| u64::try_from(seconds).ok())
                        .filter(|seconds| *seconds > 0)
                        .map(std::time::Duration::from_secs)
                        .ok_or_else(|| {
                            CliError::usage(format!(
                                "--expires-in {text:?}: expected a duration like 12h, 30d or 1d12h"
                            ))
                        })?,
                ),
                None => None,
            };
            let (info, token) = client
                .create_token(NewToken {
                    name,
                    role,
                    projects,
                    expires_in,
                })
                .await
                .map_err(|error| CliError::server("cannot create the token", error))?;
            if printer.json() {
                printer.print_json(
                    &serde_json::json!({ "token": token, "info": token_json(&info) }),
                )?;
            } else {
                println!("{token}");
                eprintln!(
                    "token {} ({}, {}) created; it is shown only this once",
                    info.id, info.name, info.role
                );
            }
            Ok(EXIT_OK)
        }
        TokenCommand::Ls => {
            let tokens = client
                .list_tokens()
                .await
                .map_err(|error| CliError::server("cannot list tokens", error))?;
            if printer.json() {
                let tokens: Vec<_> = tokens.iter().map(token_json).collect();
                printer.print_json(&tokens)?;
            } else {
                let rows: Vec<Vec<String>> = tokens
                    .iter()
                    .map(|info| {
                        vec![
                            info.id.clone(),
                            info.name.clone(),
                            info.role.clone(),
                            if info.projects.is_empty() {
                                "*".to_owned()
                            } else {
                                info.projects.join(",")
                            },
                            rfc3339(info.expires_at.as_ref()).unwrap_or_else(|| "never".to_owned()),
                            if info.revoked_at.is_some() {
                                "revoked"
                            } else {
                                "active"
                            }
                            .to_owned(),
                        ]
                    })
                    .collect();
                print_table(
                    &["ID", "NAME", "ROLE", "PROJECTS", "EXPIRES", "STATE"],
                    &rows,
                );
            }
            Ok(EXIT_OK)
        }
        TokenCommand::Revoke { id } => {
            let info = client
                .revoke_token(&id)
                .await
                .map_err(|error| CliError::server("cannot revoke the token", error))?;
            if printer.json() {
                printer.print_json(&token_json(&info))?;
            } else {
                println!("revoked {} ({})", info.id, info.name);
            }
            Ok(EXIT_OK)
        }
    }
}

pub async fn audit(client: &Client, printer: Printer, args: AuditArgs) -> Result<u8, CliError> {
    let since = match &args.since {
        Some(text) => {
            let time = parse_time("--since", text, Utc::now())?;
            Some(slipway_sdk::prost_types::Timestamp {
                seconds: time.timestamp(),
                nanos: 0,
            })
        }
        None => None,
    };
    let records = client
        .list_audit(ListAuditRequest {
            since,
            until: None,
            actor: args.actor.unwrap_or_default(),
            action: args.action.unwrap_or_default(),
            target: args.target.unwrap_or_default(),
            limit: args.limit,
        })
        .await
        .map_err(|error| CliError::server("cannot read the audit trail", error))?;
    if printer.json() {
        let records: Vec<_> = records.iter().map(record_json).collect();
        printer.print_json(&records)?;
    } else {
        let rows: Vec<Vec<String>> = records
            .iter()
            .map(|record| {
                vec![
                    rfc3339(record.time.as_ref()).unwrap_or_default(),
                    record.actor.clone(),
                    record.action.clone(),
                    record.target.clone(),
                    record.result.clone(),
                    format!("{}ms", record.duration_micros / 1000),
                    record.message.clone(),
                ]
            })
            .collect();
        print_table(
            &[
                "TIME", "ACTOR", "ACTION", "TARGET", "RESULT", "DURATION", "MESSAGE",
            ],
            &rows,
        );
    }
    Ok(EXIT_OK)
}

fn token_json(info: &TokenInfo) -> serde_json::Value {
    serde_json::json!({
        "id": info.id,
        "name": info.name,
        "role": info.role,
        "projects": info.projects,
        "created_at": rfc3339(info.created_at.as_ref()),
        "expires_at": rfc3339(info.expires_at.as_ref()),
        "revoked_at": rfc3339(info.revoked_at.as_ref()),
        "last_used_at": rfc3339(info.last_used_at.as_ref()),
    })
}

fn record_json(record: &AuditRecord) -> serde_json::Value {
    serde_json::json!({
        "time": rfc3339(record.time.as_ref()),
        "actor_id": record.actor_id,
        "actor": record.actor,
        "action": record.action,
        "target": record.target,
        "parameters": serde_json::from_str::<serde_json::Value>(&record.parameters).unwrap_or_default(),
        "result": record.result,
        "message": record.message,
        "duration_micros": record.duration_micros,
    })
}
