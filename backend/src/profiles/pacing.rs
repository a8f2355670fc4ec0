//! A server profile's pacing: `pacing = "gmail" | "microsoft365" | "none"`, or a
//! `[servers.NAME.pacing]` table with a `preset` and any value overridden. Profiles that
//! sign in with the `microsoft` or `google` OAuth preset get that provider's pacing
//! unless they say otherwise. A generic server has no caps.

use crate::engine::pacing::Caps;
use crate::oauth::settings::Preset;
use serde::Deserialize;
use std::time::Duration;

/// The providers whose limits are known (see PROVIDERS.md), with a safety margin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PacingPreset {
    /// Gmail / Google Workspace: about 15 connections, 2,500 MB/day download and
    /// 500 MB/day upload per account, APPENDLIMIT 35,651,584.
    Gmail,
    /// Microsoft 365: about 20 connections, roughly 3,600 messages/hour sustained,
    /// messages up to 35 MB.
    Microsoft365,
    /// No caps, also where an OAuth preset would imply some.
    None,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacingTable {
    pub preset: Option<PacingPreset>,
    /// Connections at once per account, all jobs and nodes together.
    pub connections: Option<u32>,
    pub messages_per_hour: Option<u64>,
    /// Megabytes (10^6 bytes) of download from the account per window (a day).
    pub download_mb_per_day: Option<u64>,
    /// Megabytes (10^6 bytes) of upload to the account per window (a day).
    pub upload_mb_per_day: Option<u64>,
    /// The largest message (bytes) the account takes as a target.
    pub max_message_bytes: Option<u64>,
    /// The length of the "per day" window in seconds. Default 86400.
    pub window_seconds: Option<u64>,
}

/// `pacing = "gmail"` or a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum PacingConfig {
    Preset(PacingPreset),
    Table(PacingTable),
}

const MB: u64 = 1_000_000;

/// A preset's caps.
pub fn preset_caps(preset: PacingPreset) -> Caps {
    match preset {
        PacingPreset::Gmail => Caps {
            connections: Some(10),
            download_bytes: Some(2_000 * MB),
            upload_bytes: Some(450 * MB),
            max_message: Some(35_651_584),
            ..Caps::default()
        },
        PacingPreset::Microsoft365 => Caps {
            connections: Some(8),
            messages_per_hour: Some(3_000),
            max_message: Some(35 * MB),
            ..Caps::default()
        },
        PacingPreset::None => Caps::default(),
    }
}

/// The caps of a profile: its own `pacing`, else the one its OAuth preset implies.
pub fn resolve(config: Option<&PacingConfig>, oauth: Option<Preset>) -> Result<Caps, String> {
    let implied = match oauth {
        Some(Preset::Google) => PacingPreset::Gmail,
        Some(Preset::Microsoft) => PacingPreset::Microsoft365,
        None => PacingPreset::None,
    };
    let table = match config {
        None => PacingTable::default(),
        Some(PacingConfig::Preset(p)) => PacingTable {
            preset: Some(*p),
            ..PacingTable::default()
        },
        Some(PacingConfig::Table(t)) => *t,
    };
    let mut caps = preset_caps(table.preset.unwrap_or(implied));
    let positive = |name: &str, v: u64| {
        if v == 0 {
            Err(format!(
                "pacing {name} must be at least 1 (leave it out for no cap)"
            ))
        } else {
            Ok(v)
        }
    };
    if let Some(n) = table.connections {
        caps.connections = Some(positive("connections", u64::from(n))? as u32);
    }
    if let Some(n) = table.messages_per_hour {
        caps.messages_per_hour = Some(positive("messages_per_hour", n)?);
    }
    if let Some(n) = table.download_mb_per_day {
        caps.download_bytes = Some(positive("download_mb_per_day", n)?.saturating_mul(MB));
    }
    if let Some(n) = table.upload_mb_per_day {
        caps.upload_bytes = Some(positive("upload_mb_per_day", n)?.saturating_mul(MB));
    }
    if let Some(n) = table.max_message_bytes {
        caps.max_message = Some(positive("max_message_bytes", n)?);
    }
    if let Some(s) = table.window_seconds {
        caps.window = Duration::from_secs(positive("window_seconds", s)?);
    }
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Option<PacingConfig> {
        #[derive(Deserialize)]
        struct P {
            pacing: Option<PacingConfig>,
        }
        toml::from_str::<P>(text).unwrap().pacing
    }

    #[test]
    fn presets_keep_a_margin_below_the_providers_limits() {
        let gmail = preset_caps(PacingPreset::Gmail);
        assert_eq!(gmail.connections, Some(10));
        assert_eq!(gmail.download_bytes, Some(2_000_000_000));
        assert_eq!(gmail.upload_bytes, Some(450_000_000));
        assert_eq!(gmail.max_message, Some(35_651_584));
        assert_eq!(gmail.window, Duration::from_secs(86_400));
        let ms = preset_caps(PacingPreset::Microsoft365);
        assert_eq!(ms.connections, Some(8));
        assert_eq!(ms.messages_per_hour, Some(3_000));
        assert_eq!(ms.max_message, Some(35_000_000));
        assert!(preset_caps(PacingPreset::None).is_unlimited());
    }

    #[test]
    fn an_oauth_preset_implies_its_pacing_unless_told_otherwise() {
        assert_eq!(
            resolve(None, Some(Preset::Google)).unwrap(),
            preset_caps(PacingPreset::Gmail)
        );
        assert_eq!(
            resolve(None, Some(Preset::Microsoft)).unwrap(),
            preset_caps(PacingPreset::Microsoft365)
        );
        assert!(resolve(None, None).unwrap().is_unlimited());
        let none = parse("pacing = \"none\"");
        assert!(resolve(none.as_ref(), Some(Preset::Google))
            .unwrap()
            .is_unlimited());
        let ms = parse("pacing = \"microsoft365\"");
        assert_eq!(
            resolve(ms.as_ref(), None).unwrap(),
            preset_caps(PacingPreset::Microsoft365)
        );
    }

    #[test]
    fn each_value_can_be_overridden() {
        let table = parse(
            "[pacing]\npreset = \"gmail\"\nupload_mb_per_day = 3\nconnections = 2\nwindow_seconds = 8\n",
        );
        let caps = resolve(table.as_ref(), None).unwrap();
        assert_eq!(caps.upload_bytes, Some(3_000_000));
        assert_eq!(caps.connections, Some(2));
        assert_eq!(caps.window, Duration::from_secs(8));
        // The preset's other values stay.
        assert_eq!(caps.download_bytes, Some(2_000_000_000));
        assert_eq!(caps.max_message, Some(35_651_584));
        // Without a preset, only what is set.
        let own = parse("[pacing]\nmax_message_bytes = 5000\n");
        let caps = resolve(own.as_ref(), None).unwrap();
        assert_eq!(caps.max_message, Some(5000));
        assert_eq!(caps.connections, None);
        assert!(resolve(parse("[pacing]\nconnections = 0\n").as_ref(), None).is_err());
    }
}
