//! Strong customer authentication: the 3-D Secure challenge of a charge made with the 3-D
//! Secure test card (`cards.rs`).
//!
//! The charge is created `requires_action` with `next_action_url`, the challenge page
//! `<public url>/3ds/<challenge id>` (`api/three_ds.rs`); the challenge id is random, so only
//! whoever was given the URL can answer it. Then, once:
//!
//! - completed before `expires_at`: the charge succeeds (fee taken; `charge.succeeded`) or,
//!   made with `capture: false`, is authorized (`charge.authorized`), as a normal card's would;
//! - failed, or answered or timed out at or after `expires_at` (created + `three_ds_timeout`):
//!   the charge fails with `authentication_failed` (`charge.failed`);
//! - canceled by the merchant (`POST /v1/charges/{reference}/cancel`): the challenge is over.
//!
//! The challenge's state is its charge's status, so it cannot disagree with it. A second
//! answer changes nothing and shows how the charge stands. The expiry is a timer
//! ([`Effect::ExpireChallenge`]) armed when the challenge opens (and again after a restart);
//! an answer that comes after `expires_at` finds it expired even before the timer ran.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{sandbox_full, ChargeRecord, Effect, Model, Outcome};
use crate::constants::OBJECTS_MAX;
use crate::error::ApiError;
use crate::wire::{ChargeStatus, EventObject};

/// The default `three_ds_timeout`: 10 minutes, as card schemes allow for a challenge.
pub const THREE_DS_TIMEOUT_DEFAULT: Duration = Duration::from_secs(600);

/// The code a charge fails with when its challenge is failed or abandoned.
pub const AUTHENTICATION_FAILED: &str = "authentication_failed";

/// One challenge: the charge it is for and when it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// `3ds_...`, the last part of its URL.
    pub id: String,
    /// The charge's reference.
    pub reference: String,
    /// Completed, the charge is captured (`true`) or only authorized.
    pub capture: bool,
    /// Unix seconds.
    pub expires_at: i64,
}

/// The customer's answer on the challenge page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Complete,
    Fail,
}

/// The challenges and how they are made.
#[derive(Debug)]
pub(crate) struct ThreeDs {
    /// Where the sandbox is reached from outside, without a trailing slash.
    base_url: String,
    timeout: Duration,
    challenges: HashMap<String, Challenge>,
}

impl Default for ThreeDs {
    fn default() -> ThreeDs {
        ThreeDs {
            base_url: "http://127.0.0.1:7400".to_owned(),
            timeout: THREE_DS_TIMEOUT_DEFAULT,
            challenges: HashMap::new(),
        }
    }
}

impl Model {
    /// Where challenge pages are served from, and how long a challenge waits for its answer.
    pub fn configure_three_ds(&mut self, base_url: &str, timeout: Duration) {
        self.three_ds.base_url = base_url.trim_end_matches('/').to_owned();
        self.three_ds.timeout = timeout;
    }

    /// Opens the challenge of a new charge: its status and the timer that expires it. Nothing
    /// changes when it fails (the books are full).
    pub(super) fn open_challenge(
        &mut self,
        reference: &str,
        capture: bool,
        now: DateTime<Utc>,
    ) -> Result<(ChargeStatus, Effect), ApiError> {
        if self.three_ds.challenges.len() >= OBJECTS_MAX {
            return Err(sandbox_full("3-D Secure challenge"));
        }
        let id = self.new_id("3ds");
        let timeout_s = i64::try_from(self.three_ds.timeout.as_secs()).unwrap_or(i64::MAX);
        let challenge = Challenge {
            id: id.clone(),
            reference: reference.to_owned(),
            capture,
            expires_at: now.timestamp().saturating_add(timeout_s),
        };
        let status = ChargeStatus::RequiresAction {
            next_action_url: format!("{}/3ds/{id}", self.three_ds.base_url),
        };
        let timer = expiry_timer(&challenge);
        self.three_ds.challenges.insert(id, challenge);
        Ok((status, timer))
    }

    /// A challenge and its charge, as they stand.
    pub fn challenge(&self, id: &str) -> Option<(&Challenge, &ChargeRecord)> {
        let challenge = self.three_ds.challenges.get(id)?;
        let record = self.charges.get(&challenge.reference)?;
        Some((challenge, record))
    }

    /// The customer's answer. A challenge answered (or expired, or canceled) before keeps its
    /// outcome: the charge is returned as it is.
    pub fn answer_challenge(
        &mut self,
        id: &str,
        answer: Answer,
        now: DateTime<Utc>,
    ) -> Result<Outcome<ChargeRecord>, ApiError> {
        let (challenge, _) = self
            .challenge(id)
            .ok_or_else(|| ApiError::not_found("3-D Secure challenge", id))?;
        let challenge = challenge.clone();
        let resolution = match answer {
            _ if now.timestamp() >= challenge.expires_at => Resolution::Expired,
            Answer::Complete => Resolution::Completed,
            Answer::Fail => Resolution::Failed,
        };
        self.resolve(&challenge, resolution, now)
            .ok_or_else(|| ApiError::not_found("3-D Secure challenge", id))
    }

    /// The timer's end: fails the charge if its challenge is still open and past its expiry.
    pub fn expire_challenge(&mut self, id: &str, now: DateTime<Utc>) -> Vec<Effect> {
        let Some((challenge, _)) = self.challenge(id) else {
            return Vec::new();
        };
        if now.timestamp() < challenge.expires_at {
            return Vec::new();
        }
        let challenge = challenge.clone();
        self.resolve(&challenge, Resolution::Expired, now)
            .map(|outcome| outcome.effects)
            .unwrap_or_default()
    }

    /// The expiry timers of the challenges still open (after a restart).
    pub fn challenge_timers(&self) -> Vec<Effect> {
        let mut open: Vec<&Challenge> = self
            .three_ds
            .challenges
            .values()
            .filter(|challenge| {
                self.charges
                    .get(&challenge.reference)
                    .is_some_and(|record| {
                        matches!(record.charge.status, ChargeStatus::RequiresAction { .. })
                    })
            })
            .collect();
        open.sort_by(|a, b| a.id.cmp(&b.id));
        open.into_iter().map(expiry_timer).collect()
    }

    /// Every challenge, for the state file, in id order.
    pub(super) fn saved_challenges(&self) -> Vec<Challenge> {
        let mut challenges: Vec<Challenge> = self.three_ds.challenges.values().cloned().collect();
        challenges.sort_by(|a, b| a.id.cmp(&b.id));
        challenges
    }

    pub(super) fn restore_challenges(&mut self, challenges: Vec<Challenge>) {
        for challenge in challenges {
            self.three_ds
                .challenges
                .insert(challenge.id.clone(), challenge);
        }
    }

    /// Moves a charge still waiting for its challenge to the resolution's status, with its
    /// webhook; a charge past that changes nothing. `None`: no such charge (a challenge is
    /// opened with its charge, so only a hand-edited state file gets here).
    fn resolve(
        &mut self,
        challenge: &Challenge,
        resolution: Resolution,
        now: DateTime<Utc>,
    ) -> Option<Outcome<ChargeRecord>> {
        let fees = self.fees;
        let record = self.charges.get_mut(&challenge.reference)?;
        if !matches!(record.charge.status, ChargeStatus::RequiresAction { .. }) {
            return Some(Outcome {
                object: record.clone(),
                effects: Vec::new(),
            });
        }
        let (status, kind) = match resolution {
            Resolution::Completed if challenge.capture => {
                (ChargeStatus::Succeeded, "charge.succeeded")
            }
            Resolution::Completed => (ChargeStatus::Authorized, "charge.authorized"),
            Resolution::Failed => (
                failed("The customer failed 3-D Secure authentication."),
                "charge.failed",
            ),
            Resolution::Expired => (
                failed("The 3-D Secure challenge was not completed in time."),
                "charge.failed",
            ),
        };
        if status == ChargeStatus::Succeeded {
            record.charge.fee = fees.fee(record.charge.amount);
        }
        record.charge.status = status;
        let record = record.clone();
        let effect = self.event(kind, EventObject::Charge(record.charge.clone()), now);
        Some(Outcome {
            object: record,
            effects: vec![effect],
        })
    }
}

/// How a challenge ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolution {
    Completed,
    Failed,
    Expired,
}

fn failed(message: &str) -> ChargeStatus {
    ChargeStatus::Failed {
        code: AUTHENTICATION_FAILED.to_owned(),
        message: message.to_owned(),
    }
}

fn expiry_timer(challenge: &Challenge) -> Effect {
    Effect::ExpireChallenge {
        id: challenge.id.clone(),
        at: DateTime::from_timestamp(challenge.expires_at, 0).unwrap_or(DateTime::<Utc>::MAX_UTC),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{charge_input, model, now, token};
    use super::*;

    const THREE_DS_CARD: &str = "4000000000003220";

    /// A model with a 60 s challenge timeout and one 3-D Secure charge of 1000 (captured or
    /// only authorized); returns the model and the challenge id.
    fn opened(capture: bool) -> (Model, String) {
        let mut model = model();
        model.configure_three_ds("https://psp.test/", Duration::from_secs(60));
        let card = token(&mut model, THREE_DS_CARD);
        let input = ChargeInput {
            capture,
            ..charge_input("ord_1", &card, 1000)
        };
        let outcome = model.create_charge(&input, now()).unwrap();
        let ChargeStatus::RequiresAction { next_action_url } = &outcome.object.charge.status else {
            panic!("{:?}", outcome.object.charge.status);
        };
        let id = next_action_url
            .strip_prefix("https://psp.test/3ds/")
            .expect("the challenge page of the configured public URL")
            .to_owned();
        assert_eq!(outcome.object.charge.fee, 0);
        match outcome.effects.as_slice() {
            [Effect::ExpireChallenge { id: timer, at }] => {
                assert_eq!(timer, &id);
                assert_eq!(*at, now() + chrono::Duration::seconds(60));
            }
            other => panic!("{other:?}"),
        }
        (model, id)
    }

    fn kinds(effects: &[Effect]) -> Vec<&str> {
        effects
            .iter()
            .map(|effect| match effect {
                Effect::Webhook(event) => event.kind.as_str(),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    use super::super::ChargeInput;

    #[test]
    fn completing_the_challenge_captures_the_charge_once() {
        let (mut model, id) = opened(true);
        let later = now() + chrono::Duration::seconds(59);
        let outcome = model
            .answer_challenge(&id, Answer::Complete, later)
            .unwrap();
        assert_eq!(outcome.object.charge.status, ChargeStatus::Succeeded);
        assert_eq!(outcome.object.charge.fee, 59);
        assert_eq!(kinds(&outcome.effects), ["charge.succeeded"]);
        // Again, or failed afterwards, or its timer: nothing changes.
        for answer in [Answer::Complete, Answer::Fail] {
            let again = model.answer_challenge(&id, answer, later).unwrap();
            assert_eq!(again.object.charge.status, ChargeStatus::Succeeded);
            assert!(again.effects.is_empty());
        }
        let expired = now() + chrono::Duration::seconds(600);
        assert!(model.expire_challenge(&id, expired).is_empty());
        assert!(model.challenge_timers().is_empty());
    }

    #[test]
    fn completing_an_authorization_only_authorizes_it() {
        let (mut model, id) = opened(false);
        let outcome = model
            .answer_challenge(&id, Answer::Complete, now())
            .unwrap();
        assert_eq!(outcome.object.charge.status, ChargeStatus::Authorized);
        assert_eq!(outcome.object.charge.fee, 0);
        assert_eq!(kinds(&outcome.effects), ["charge.authorized"]);
        let captured = model
            .capture("ord_1", &super::super::CaptureInput { amount: None }, now())
            .unwrap();
        assert_eq!(captured.object.charge.status, ChargeStatus::Succeeded);
    }

    #[test]
    fn failing_the_challenge_fails_the_charge() {
        let (mut model, id) = opened(true);
        let outcome = model.answer_challenge(&id, Answer::Fail, now()).unwrap();
        let ChargeStatus::Failed { code, .. } = &outcome.object.charge.status else {
            panic!("{:?}", outcome.object.charge.status);
        };
        assert_eq!(code, AUTHENTICATION_FAILED);
        assert_eq!(kinds(&outcome.effects), ["charge.failed"]);
        let again = model
            .answer_challenge(&id, Answer::Complete, now())
            .unwrap();
        assert!(matches!(
            again.object.charge.status,
            ChargeStatus::Failed { .. }
        ));
        assert!(again.effects.is_empty());
    }

    #[test]
    fn an_abandoned_challenge_fails_at_its_expiry_and_not_before() {
        let (mut model, id) = opened(true);
        assert_eq!(model.challenge_timers().len(), 1);
        let early = now() + chrono::Duration::seconds(59);
        assert!(model.expire_challenge(&id, early).is_empty());
        let due = now() + chrono::Duration::seconds(60);
        assert_eq!(kinds(&model.expire_challenge(&id, due)), ["charge.failed"]);
        let (_, record) = model.challenge(&id).unwrap();
        assert!(matches!(
            &record.charge.status,
            ChargeStatus::Failed { code, .. } if code == AUTHENTICATION_FAILED
        ));
        assert!(model.expire_challenge(&id, due).is_empty());
    }

    #[test]
    fn a_late_answer_finds_the_challenge_expired() {
        let (mut model, id) = opened(true);
        let late = now() + chrono::Duration::seconds(61);
        let outcome = model.answer_challenge(&id, Answer::Complete, late).unwrap();
        assert!(matches!(
            outcome.object.charge.status,
            ChargeStatus::Failed { .. }
        ));
        assert_eq!(kinds(&outcome.effects), ["charge.failed"]);
    }

    #[test]
    fn a_canceled_charge_ends_its_challenge() {
        let (mut model, id) = opened(true);
        let canceled = model.cancel("ord_1", now()).unwrap();
        assert_eq!(canceled.object.charge.status, ChargeStatus::Canceled);
        let outcome = model
            .answer_challenge(&id, Answer::Complete, now())
            .unwrap();
        assert_eq!(outcome.object.charge.status, ChargeStatus::Canceled);
        assert!(outcome.effects.is_empty());
        assert!(model.challenge_timers().is_empty());
    }

    #[test]
    fn unknown_challenges_are_not_found_and_captures_wait_for_the_challenge() {
        let (mut model, _) = opened(true);
        let error = model
            .answer_challenge("3ds_nope", Answer::Complete, now())
            .unwrap_err();
        assert_eq!(error.code, "resource_missing");
        let error = model
            .capture("ord_1", &super::super::CaptureInput { amount: None }, now())
            .unwrap_err();
        assert_eq!(error.code, "charge_requires_action");
    }

    #[test]
    fn open_challenges_survive_a_restart() {
        let (model, id) = opened(true);
        let saved = serde_json::to_string(&model.save()).unwrap();
        let mut restored = super::super::testing::model();
        restored
            .restore(serde_json::from_str(&saved).unwrap())
            .unwrap();
        assert_eq!(restored.challenge_timers().len(), 1);
        let outcome = restored
            .answer_challenge(&id, Answer::Complete, now())
            .unwrap();
        assert_eq!(outcome.object.charge.status, ChargeStatus::Succeeded);
    }
}
