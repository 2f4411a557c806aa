//! TOTP: enrollment with codes from an independent implementation, local login, one use per
//! code (even concurrently), lockout and recovery, sealed secrets, high-security targets.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cooper_core::clock::Clock;
use cooper_core::model::Principal;
use serde_json::json;
use time::Duration;

use crate::harness::{ACCOUNT_A, TestEnv, pyotp_code};

/// Decodes the QR code in a PNG (with rqrr, independent of the encoder cooper uses).
fn decode_qr(png_bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    let (w, h) = (info.width as usize, info.height as usize);
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().unwrap().1
}

#[tokio::test(flavor = "multi_thread")]
async fn enrollment_login_and_password_with_codes_from_pyotp() {
    let env = TestEnv::start().await;
    let alice = env.user("alice@example.com").await;
    // A first enrollment, as a person makes it: with the one-time code an admin issued.
    let token = env.enrollment_code(&alice).await;

    let started = env
        .post("/v1/totp/enrollment", Some(&token), json!({}))
        .await;
    assert_eq!(started.status, 200, "{}", started.text);
    assert_eq!(started.headers["cache-control"], "no-store");
    let uri = started.body["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/cooper:alice%40example.com?"),
        "{uri}"
    );
    // The QR code holds exactly the URI.
    let png_bytes = STANDARD
        .decode(started.body["qr_png_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(decode_qr(&png_bytes), uri);

    // Not active until confirmed: a wrong first code is refused, pyotp's is accepted.
    let wrong = env
        .post(
            "/v1/totp/enrollment/confirm",
            Some(&token),
            json!({"totp": "000000"}),
        )
        .await;
    assert_eq!(wrong.status, 403, "{}", wrong.text);
    assert_eq!(wrong.error_code(), "totp_invalid");
    let code = pyotp_code(uri, env.clock.now());
    let confirmed = env
        .post(
            "/v1/totp/enrollment/confirm",
            Some(&token),
            json!({"totp": code}),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    let authenticator = crate::harness::Authenticator {
        uri: uri.to_owned(),
        secret: started.body["secret"].as_str().unwrap().to_owned(),
    };

    // A password, set with a fresh code in a signed-in session; then a login with both.
    let set = env
        .call(
            reqwest::Method::PUT,
            "/v1/password",
            Some(&env.jwt(&alice)),
            Some(&json!({"password": "correct horse battery staple", "totp": env.fresh_code(&authenticator)}).to_string()),
            Some("application/json"),
        )
        .await;
    assert_eq!(set.status, 204, "{}", set.text);

    let login = |password: &str, code: String| {
        env.post(
            "/v1/sessions",
            None,
            json!({"user": "alice@example.com", "password": password, "totp": code}),
        )
    };
    let bad = login("wrong horse battery staple", env.fresh_code(&authenticator)).await;
    assert_eq!(bad.status, 401);
    assert_eq!(bad.error_code(), "invalid_credentials");
    let session = login(
        "correct horse battery staple",
        env.fresh_code(&authenticator),
    )
    .await;
    assert_eq!(session.status, 200, "{}", session.text);
    assert_eq!(session.body["token_type"], "Bearer");
    let jwt = session.body["token"].as_str().unwrap();
    let me = env.get("/v1/whoami", jwt).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["user"], "alice@example.com");
    assert_eq!(me.body["authenticated_by"], "jwt");

    // An unknown user is refused exactly like a wrong password.
    let ghost = env
        .post(
            "/v1/sessions",
            None,
            json!({"user": "ghost", "password": "correct horse battery staple", "totp": "123456"}),
        )
        .await;
    assert_eq!(ghost.status, 401);
    assert_eq!(ghost.error_code(), "invalid_credentials");

    // Every step is audited, and no record holds the secret, a code or the password.
    let items = env.audit_items().await;
    let mut events: Vec<&str> = items
        .iter()
        .map(|i| i["event"].as_s().unwrap().as_str())
        .collect();
    events.sort_unstable();
    for expected in [
        "password.changed",
        "session.created",
        "session.refused",
        "totp.enrolled",
        "totp.enrollment_started",
        "totp.enrollment_refused",
    ] {
        assert!(
            events.contains(&expected),
            "{expected} missing from {events:?}"
        );
    }
    let everything = format!("{items:?}");
    assert!(!everything.contains(&authenticator.secret));
    assert!(!everything.contains("correct horse"));
    assert!(!everything.contains(jwt));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_is_accepted_once_even_under_concurrent_requests() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    let mut target = env.role_target("a-sensitive", ACCOUNT_A, 10, None).await;
    target.high_security = true;
    env.directory.put_target(&target).await.unwrap();
    let alice = env.user("alice").await;
    env.grant_target(Principal::User(alice.clone()), "a-sensitive")
        .await;
    let token = env.api_token(&alice).await;
    let authenticator = env.enroll(&token).await;

    let code = env.fresh_code(&authenticator);
    let ask =
        |code: String| env.credentials(&token, json!({"target": "a-sensitive", "totp": code}));
    let first = ask(code.clone()).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let again = ask(code).await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(again.error_code(), "totp_replayed");

    // Eight requests at once with one fresh code: exactly one gets credentials.
    let code = env.fresh_code(&authenticator);
    let answers = futures_util::future::join_all((0..8).map(|_| ask(code.clone()))).await;
    let ok = answers.iter().filter(|a| a.status == 200).count();
    let replayed = answers
        .iter()
        .filter(|a| a.status == 409 && a.error_code() == "totp_replayed")
        .count();
    assert_eq!(
        (ok, replayed),
        (1, 7),
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn five_failures_lock_the_user_out_until_the_window_passes() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    let mut target = env.role_target("a-sensitive", ACCOUNT_A, 10, None).await;
    target.high_security = true;
    env.directory.put_target(&target).await.unwrap();
    let alice = env.user("alice").await;
    env.grant_target(Principal::User(alice.clone()), "a-sensitive")
        .await;
    let token = env.api_token(&alice).await;
    let authenticator = env.enroll(&token).await;

    let ask =
        |code: String| env.credentials(&token, json!({"target": "a-sensitive", "totp": code}));
    for attempt in 1..=4 {
        let answer = ask("000000".into()).await;
        assert_eq!(answer.status, 403, "attempt {attempt}: {}", answer.text);
        assert_eq!(answer.error_code(), "totp_invalid");
    }
    let fifth = ask("000000".into()).await;
    assert_eq!(fifth.status, 429, "{}", fifth.text);
    assert_eq!(fifth.error_code(), "locked_out");
    let retry: i64 = fifth.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((890..=900).contains(&retry), "Retry-After {retry}");

    // Locked: even the right code is refused, and does not count as used.
    let right = env.fresh_code(&authenticator);
    let locked = ask(right).await;
    assert_eq!(locked.status, 429);

    // After the window, the right code works again.
    env.clock.advance(Duration::minutes(15));
    let answer = ask(env.fresh_code(&authenticator)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    // And the count starts again from nothing: four failures do not lock.
    for _ in 0..4 {
        assert_eq!(ask("000000".into()).await.status, 403);
    }
    assert_eq!(ask(env.fresh_code(&authenticator)).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stored_secret_is_ciphertext_that_only_opens_for_its_user() {
    let env = TestEnv::start().await;
    let alice = env.user("alice").await;
    let token = env.api_token(&alice).await;
    let authenticator = env.enroll(&token).await;

    let item = env
        .dynamodb
        .get_item()
        .table_name(&env.settings.directory_table)
        .key(
            "PK",
            cooper_aws::aws_sdk_dynamodb::types::AttributeValue::S("AUTH#alice".into()),
        )
        .key(
            "SK",
            cooper_aws::aws_sdk_dynamodb::types::AttributeValue::S("TOTP".into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let sealed = item["sealed"].as_s().unwrap();
    let ciphertext = STANDARD.decode(sealed).unwrap();
    assert!(!format!("{item:?}").contains(&authenticator.secret));

    let kms = cooper_aws::aws_sdk_kms::Client::new(&env.sdk);
    let decrypt = |user: &str| {
        kms.decrypt()
            .ciphertext_blob(cooper_aws::aws_sdk_kms::primitives::Blob::new(
                ciphertext.clone(),
            ))
            .encryption_context("cooper:purpose", "totp-secret")
            .encryption_context("cooper:user", user)
            .send()
    };
    assert!(
        decrypt("bob").await.is_err(),
        "another user's context does not open it"
    );
    let opened = decrypt("alice")
        .await
        .unwrap()
        .plaintext
        .unwrap()
        .into_inner();
    let reopened = cooper_core::totp::TotpSecret::from_bytes(opened.clone()).unwrap();
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&reopened.base32()),
        &authenticator.secret
    );
    assert!(
        !ciphertext.windows(opened.len()).any(|w| w == opened),
        "the secret is not stored in the clear"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn high_security_targets_need_a_fresh_code_and_refusals_are_audited() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    let mut target = env.role_target("a-sensitive", ACCOUNT_A, 10, None).await;
    target.high_security = true;
    env.directory.put_target(&target).await.unwrap();
    let alice = env.user("alice").await;
    let bob = env.user("bob").await;
    env.grant_target(Principal::User(alice.clone()), "a-sensitive")
        .await;
    env.grant_target(Principal::User(bob.clone()), "a-sensitive")
        .await;
    let token = env.api_token(&alice).await;
    let authenticator = env.enroll(&token).await;

    let ask = |body: serde_json::Value| env.credentials(&token, body);
    let missing = ask(json!({"target": "a-sensitive"})).await;
    assert_eq!(missing.status, 422);
    assert_eq!(missing.error_code(), "totp_required");

    let wrong = ask(json!({"target": "a-sensitive", "totp": "123456"})).await;
    assert_eq!(wrong.status, 403);
    assert_eq!(wrong.error_code(), "totp_invalid");

    env.clock.advance(Duration::seconds(30));
    let stale = pyotp_code(&authenticator.uri, env.clock.now() - Duration::seconds(90));
    let stale = ask(json!({"target": "a-sensitive", "totp": stale})).await;
    assert_eq!(
        stale.status, 403,
        "a code from three steps ago: {}",
        stale.text
    );
    assert_eq!(stale.error_code(), "totp_invalid");

    let malformed = ask(json!({"target": "a-sensitive", "totp": "12ab56"})).await;
    assert_eq!(malformed.status, 400);

    let bob_token = env.api_token(&bob).await;
    let unenrolled = env
        .credentials(
            &bob_token,
            json!({"target": "a-sensitive", "totp": "123456"}),
        )
        .await;
    assert_eq!(unenrolled.status, 403);
    assert_eq!(unenrolled.error_code(), "totp_not_enrolled");

    let good = ask(json!({"target": "a-sensitive", "totp": env.fresh_code(&authenticator)})).await;
    assert_eq!(good.status, 200, "{}", good.text);

    let mut reasons: Vec<String> = env
        .audit_items()
        .await
        .iter()
        .filter(|i| i["event"].as_s().unwrap() == "credentials.denied")
        .map(|i| i["reason"].as_s().unwrap().clone())
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "totp_invalid",
            "totp_invalid",
            "totp_not_enrolled",
            "totp_required"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn enrolling_again_needs_a_current_code() {
    let env = TestEnv::start().await;
    let alice = env.user("alice").await;
    // Enrolling again is for the person, signed in, with a current code.
    let token = env.jwt(&alice);
    let authenticator = env.enroll(&token).await;

    let without = env
        .post("/v1/totp/enrollment", Some(&token), json!({}))
        .await;
    assert_eq!(without.status, 422);
    assert_eq!(without.error_code(), "totp_required");
    let with = env
        .post(
            "/v1/totp/enrollment",
            Some(&token),
            json!({"totp": env.fresh_code(&authenticator)}),
        )
        .await;
    assert_eq!(with.status, 200, "{}", with.text);
    // Until the new one is confirmed, the old authenticator still works.
    let new_uri = with.body["otpauth_uri"].as_str().unwrap();
    assert_ne!(new_uri, authenticator.uri);
    let confirm = env
        .post(
            "/v1/totp/enrollment/confirm",
            Some(&token),
            json!({"totp": pyotp_code(new_uri, env.clock.now())}),
        )
        .await;
    assert_eq!(confirm.status, 200, "{}", confirm.text);
}
