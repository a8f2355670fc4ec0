//! `mailferry staff add|list|remove|passwd`: staff accounts from a terminal.

use crate::cli::{ServeArgs, StaffCommand, StaffDbArgs};
use crate::config::Config;
use crate::db::Database;
use anyhow::{bail, Context};
use mailferry_shared::StaffRole;
use std::io::BufRead;
use std::path::Path;

async fn open_db(config_file: Option<&Path>, args: &StaffDbArgs) -> anyhow::Result<Database> {
    let serve = ServeArgs {
        data_dir: args.data_dir.clone(),
        database_url: args.database_url.clone(),
        ..ServeArgs::default()
    };
    let config = Config::load(config_file, &serve)?;
    Ok(Database::open(&config.database_url).await?)
}

/// The password from MAILFERRY_STAFF_PASSWORD, the password file, or one line of stdin.
fn read_password(username: &str, password_file: Option<&Path>) -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("MAILFERRY_STAFF_PASSWORD") {
        return Ok(password);
    }
    let line = match password_file {
        Some(file) => std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
        None => {
            eprintln!("Password for {username} (one line on standard input):");
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    if line.is_empty() {
        bail!("no password given");
    }
    Ok(line)
}

pub async fn run(config_file: Option<&Path>, command: StaffCommand) -> anyhow::Result<()> {
    match command {
        StaffCommand::Add(args) => {
            let role = if args.role == "admin" {
                StaffRole::Admin
            } else {
                StaffRole::Helpdesk
            };
            let password = read_password(&args.username, args.password_file.as_deref())?;
            let db = open_db(config_file, &args.db).await?;
            crate::staff::add(
                db.pool(),
                &args.username,
                &password,
                role,
                args.reset_password,
            )
            .await?;
            println!(
                "{} account {} is ready.",
                crate::staff::role_name(role),
                args.username
            );
            Ok(())
        }
        StaffCommand::List(args) => {
            let db = open_db(config_file, &args).await?;
            for (name, role) in crate::staff::list(db.pool()).await? {
                println!("{name}\t{}", crate::staff::role_name(role));
            }
            Ok(())
        }
        StaffCommand::Remove(args) => {
            let db = open_db(config_file, &args.db).await?;
            crate::staff::remove(db.pool(), &args.username).await?;
            println!(
                "Staff account {} is removed; its sessions no longer work.",
                args.username
            );
            Ok(())
        }
        StaffCommand::Passwd(args) => {
            let password = read_password(&args.username, args.password_file.as_deref())?;
            let db = open_db(config_file, &args.db).await?;
            crate::staff::set_password(db.pool(), &args.username, &password).await?;
            println!(
                "The password of {} is changed; sessions signed in before now no longer work.",
                args.username
            );
            Ok(())
        }
    }
}
