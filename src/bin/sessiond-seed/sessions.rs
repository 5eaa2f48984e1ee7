//! The seeder's sessions: a realistic mix of devices and login times for
//! the ordinary users, and fresh sessions, whose tokens are handed out, for
//! the known user and the admin.

use chrono::NaiveDateTime;
use rand::rngs::StdRng;
use rand::Rng;

use sessiond::db::Conn;
use sessiond::domain::clock;
use sessiond::domain::device::Device;
use sessiond::domain::token::{self, AuthToken};
use sessiond::store::sessions::{bulk, NewSession};

use crate::users::{SeedUser, SeedUsers};

/// A load this large drops the secondary indexes and rebuilds them after.
const REBUILD_INDEXES_FROM: usize = 100_000;

/// User agents with weights, roughly as a consumer product sees them.
const AGENTS: [(&str, u32); 10] = [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", 30),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0", 8),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15", 10),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36", 8),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1", 16),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36", 14),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", 5),
    ("Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36", 4),
    ("curl/8.4.0", 3),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 2),
];

/// The devices of `AGENTS`, parsed once, with their weights.
pub struct Devices {
    weighted: Vec<(Device, u32)>,
    total_weight: u32,
}

impl Devices {
    pub fn parse() -> Self {
        let weighted: Vec<(Device, u32)> = AGENTS
            .iter()
            .map(|(ua, w)| (Device::from_user_agent(ua), *w))
            .collect();
        let total_weight = weighted.iter().map(|(_, w)| w).sum();
        Devices {
            weighted,
            total_weight,
        }
    }

    /// A device drawn by weight.
    fn pick(&self, rng: &mut StdRng) -> Device {
        let mut pick = rng.gen_range(0..self.total_weight);
        self.weighted
            .iter()
            .find(|(_, w)| {
                if pick < *w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .map(|(d, _)| d.clone())
            .unwrap_or_default()
    }

    /// The devices in turn, regardless of weight.
    fn nth(&self, i: usize) -> Device {
        self.weighted[i % self.weighted.len()].0.clone()
    }
}

/// Adds sessions spread over the ordinary users until they hold `wanted`;
/// returns how many were added.
pub fn top_up(
    conn: &mut Conn,
    rng: &mut StdRng,
    devices: &Devices,
    users: &SeedUsers,
    wanted: usize,
    now: NaiveDateTime,
) -> anyhow::Result<usize> {
    let pool = users.pool();
    anyhow::ensure!(
        !pool.is_empty() || wanted == 0,
        "no users to give sessions to"
    );
    let pool_ids: Vec<i64> = pool.iter().map(|(id, _, _)| *id).collect();
    let present = bulk::count_for_users(conn, &pool_ids)? as usize;
    let missing = wanted.saturating_sub(present);
    let rebuild = if missing >= REBUILD_INDEXES_FROM {
        bulk::drop_secondary_indexes(conn)?
    } else {
        Vec::new()
    };
    let progress = (missing > 0).then(|| crate::progress::bar("inserting sessions", missing));
    let mut inserted = 0;
    while inserted < missing {
        let batch = (missing - inserted).min(crate::CHUNK);
        let rows: Vec<NewSession> = (0..batch)
            .map(|_| {
                let owner = pool[rng.gen_range(0..pool.len())];
                let device = devices.pick(rng);
                let login_at = clock::plus_seconds(now, -rng.gen_range(0..30 * 86_400));
                let last_activity_at =
                    clock::plus_seconds(login_at, rng.gen_range(0..86_400)).min(now);
                // Nobody logs in with these tokens: a fast seeded generator will do.
                let mut token = [0u8; 32];
                rng.fill(&mut token);
                let token = AuthToken::parse(&hex(&token)).unwrap_or_else(AuthToken::generate);
                new_session(owner, device, login_at, last_activity_at, rng, &token, None)
            })
            .collect();
        bulk::insert_sessions(conn, &rows)?;
        inserted += batch;
        if let Some(progress) = &progress {
            progress.inc(batch as u64);
        }
    }
    if let Some(progress) = progress {
        progress.finish();
    }
    if !rebuild.is_empty() {
        let progress = crate::progress::spinner(format!("rebuilding {} indexes", rebuild.len()));
        bulk::rebuild_indexes(conn, &rebuild)?;
        progress.finish();
    }
    Ok(missing)
}

/// The sessions whose tokens the seeder hands out.
pub struct HandedOut {
    /// The known user's newest session; `None` when none were asked for.
    pub known_token: Option<AuthToken>,
    pub admin_token: AuthToken,
    /// When the admin session's second factor runs out.
    pub admin_2fa_until: NaiveDateTime,
}

/// Replaces the known user's and the admin's sessions with fresh ones, so
/// their tokens can be handed out: `known_sessions` for the known user, one
/// past the second factor for `admin_2fa_minutes` for the admin.
pub fn reissue(
    conn: &mut Conn,
    rng: &mut StdRng,
    devices: &Devices,
    users: &SeedUsers,
    known_sessions: usize,
    admin_2fa_minutes: u32,
    now: NaiveDateTime,
) -> anyhow::Result<HandedOut> {
    bulk::delete_for_users(conn, &[users.known.0, users.admin.0])?;
    let mut known_token = None;
    let mut rows = Vec::with_capacity(known_sessions);
    for i in 0..known_sessions {
        let token = AuthToken::generate();
        let login_at = clock::plus_seconds(now, -(i as i64) * 3600);
        rows.push(new_session(
            &users.known,
            devices.nth(i),
            login_at,
            now,
            rng,
            &token,
            None,
        ));
        known_token.get_or_insert(token);
    }
    let admin_token = AuthToken::generate();
    let admin_2fa_until = clock::plus_seconds(clock::now(), i64::from(admin_2fa_minutes) * 60);
    rows.push(new_session(
        &users.admin,
        devices.nth(0),
        now,
        now,
        rng,
        &admin_token,
        Some(admin_2fa_until),
    ));
    bulk::insert_sessions(conn, &rows)?;
    Ok(HandedOut {
        known_token,
        admin_token,
        admin_2fa_until,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn new_session(
    (user_id, _, user_guid): &SeedUser,
    device: Device,
    login_at: NaiveDateTime,
    last_activity_at: NaiveDateTime,
    rng: &mut StdRng,
    token: &AuthToken,
    two_factor_until: Option<NaiveDateTime>,
) -> NewSession {
    let session_id = token::session_id_from(rng);
    let ip = format!(
        "10.{}.{}.{}",
        rng.gen_range(0..256),
        rng.gen_range(0..256),
        rng.gen_range(1..255)
    );
    NewSession {
        ip,
        host: "sessions.example.com".into(),
        instance_id: "seed".into(),
        last_activity_at,
        expires_at: clock::plus_seconds(clock::now(), 90 * 86_400),
        idle_timeout_seconds: 90 * 86_400,
        two_factor_until,
        updated_at: last_activity_at,
        ..NewSession::new(session_id, (*user_id, user_guid), token, device, login_at)
    }
}
