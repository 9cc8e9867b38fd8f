//! Every user authentication flow, end to end through a real key exchange, with a fake
//! decision-maker on the server and a scripted user on the client.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use super::util::{
    assert_authenticated, client_config, client_config_full, client_config_with, open_session,
    password_backend, password_pair, read_client, server_config, server_config_full,
    server_config_with, server_transport, user_key, CHUNKINGS, PASSWORD,
};
use crate::connection::{self, Stream};
use crate::crypto::algorithms::Category;
use crate::error::{Error, Initiator, LocalMisuse, PeerMisbehaved};
use crate::keys::{PrivateKey, SignatureAlgorithm};
use crate::stack::{ClientEvent, ServerEvent};
use crate::testing::{fixtures, StackPair};
use crate::transport;
use crate::userauth::{
    self, Attempt, Decision, FailureDelay, InfoRequest, Method, Password, PasswordAnswer, Prompt,
};
use crate::wire::DisconnectReason;

/// What the server's backend was asked, in order.
type Seen = Rc<RefCell<Vec<Attempt>>>;

/// A backend that records every attempt and answers with `decide`.
fn recording<R: 'static>(
    seen: &Seen,
    mut decide: impl FnMut(&Attempt) -> Decision<R> + 'static,
) -> crate::testing::Decider<R> {
    let seen = Rc::clone(seen);
    Box::new(move |_user, attempt| {
        seen.borrow_mut().push(attempt.clone());
        Some(decide(attempt))
    })
}

/// A client user who signs with `keys` (by public key) and types `password`.
fn user_with(keys: Vec<PrivateKey>, password: &'static str) -> crate::testing::Answerer {
    Box::new(move |event, client| match event {
        userauth::ClientEvent::SignatureRequested { key, algorithm, data } => {
            let signer = keys.iter().find(|k| k.public_key() == key).unwrap();
            client.signature_ready(Some(signer.sign(*algorithm, data).unwrap())).unwrap();
        }
        userauth::ClientEvent::PasswordRequested { .. } => {
            let answer = PasswordAnswer::Password(Password::from(password));
            client.password_ready(Some(answer)).unwrap();
        }
        _ => {}
    })
}

/// The server's `Authenticated` event: user, methods and restrictions.
fn authenticated<R: Clone>(pair: &StackPair<R>) -> Option<(String, Vec<Method>, Vec<R>)> {
    pair.server_events().iter().find_map(|e| match e {
        ServerEvent::Auth(userauth::ServerEvent::Authenticated {
            user,
            methods_used,
            restrictions,
            ..
        }) => Some((user.clone(), methods_used.clone(), restrictions.clone())),
        _ => None,
    })
}

/// The client's user authentication events.
fn client_auth_events<R>(pair: &StackPair<R>) -> Vec<&userauth::ClientEvent> {
    pair.client_events()
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Auth(e) => Some(e),
            _ => None,
        })
        .collect()
}

/// A password login succeeds through the whole stack, whatever the delivery chunk size, and the
/// server reports who logged in with what.
#[test]
fn password_login_succeeds_in_every_chunking() {
    for chunk in CHUNKINGS {
        let mut pair = password_pair();
        pair.set_chunk_size(chunk);
        pair.drive();
        assert_authenticated(&pair);
        assert_eq!(
            authenticated(&pair),
            Some(("alice".to_owned(), vec![Method::Password], vec!["password".to_owned()])),
            "chunk {chunk:?}"
        );
    }
}

/// A public key login asks the backend twice (may this key log in? then, with the signature
/// verified, does it?) and succeeds, whatever the chunk size.
#[test]
fn publickey_login_queries_then_signs_in_every_chunking() {
    for chunk in CHUNKINGS {
        let key = user_key(1);
        let seen = Seen::default();
        let mut pair = StackPair::new(client_config(), server_config(), "alice");
        pair.set_chunk_size(chunk);
        pair.client.add_identity(key.public_key().clone());
        let expected = key.public_key().clone();
        pair.decider = Some(recording(&seen, move |attempt| match attempt {
            Attempt::PublicKeyQuery { key, .. } | Attempt::PublicKey { key, .. }
                if *key == expected =>
            {
                Decision::Accept("key")
            }
            _ => Decision::Reject,
        }));
        pair.answerer = Some(user_with(vec![key], "wrong"));
        pair.drive();
        assert_authenticated(&pair);
        let kinds: Vec<_> = seen
            .borrow()
            .iter()
            .map(|a| match a {
                Attempt::PublicKeyQuery { .. } => "query",
                Attempt::PublicKey { .. } => "signed",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["query", "signed"], "chunk {chunk:?}");
        assert_eq!(authenticated(&pair).unwrap().1, [Method::PublicKey]);
    }
}

/// Keyboard-interactive runs as many rounds as the backend asks, with the client's answers
/// reaching the backend in order.
#[test]
fn keyboard_interactive_runs_several_rounds() {
    let seen = Seen::default();
    let config =
        server_config_with(|c| c.methods = vec![Method::KeyboardInteractive], Default::default());
    let mut pair = StackPair::new(client_config(), config, "alice");
    let prompt = |text: &str| Prompt { text: text.to_owned(), echo: false };
    pair.decider = Some(recording(&seen, move |attempt| match attempt {
        Attempt::KeyboardInteractive { .. } => Decision::InfoRequest(InfoRequest {
            name: "login".into(),
            instruction: String::new(),
            prompts: vec![prompt("Password: "), prompt("PIN: ")],
        }),
        Attempt::KeyboardInteractiveResponses { responses, .. } if responses.len() == 2 => {
            if responses[0].matches(b"pw") && responses[1].matches(b"1234") {
                Decision::InfoRequest(InfoRequest {
                    name: String::new(),
                    instruction: "one more".into(),
                    prompts: vec![prompt("OTP: ")],
                })
            } else {
                Decision::Reject
            }
        }
        Attempt::KeyboardInteractiveResponses { responses, .. } if responses[0].matches(b"999") => {
            Decision::Accept(())
        }
        _ => Decision::Reject,
    }));
    pair.answerer = Some(Box::new(|event, client| {
        if let userauth::ClientEvent::InfoRequested(info) = event {
            let answers = info
                .prompts
                .iter()
                .map(|p| match p.text.as_str() {
                    "Password: " => Password::from("pw"),
                    "PIN: " => Password::from("1234"),
                    _ => Password::from("999"),
                })
                .collect();
            client.info_responses_ready(Some(answers)).unwrap();
        }
    }));
    pair.drive();
    assert_authenticated(&pair);
    assert_eq!(seen.borrow().len(), 3, "start, round one, round two");
    let rounds = client_auth_events(&pair)
        .iter()
        .filter(|e| matches!(e, userauth::ClientEvent::InfoRequested(_)))
        .count();
    assert_eq!(rounds, 2);
}

/// Wrong passwords fail until the client runs out of prompts; the client reports `Failed` and
/// the connection stays open for the application to end, which the server then sees.
#[test]
fn wrong_passwords_fail_until_the_client_gives_up() {
    let config = server_config_with(|c| c.methods = vec![Method::Password], Default::default());
    let mut pair = StackPair::new(client_config(), config, "alice");
    pair.decider = Some(Box::new(password_backend));
    pair.answerer = Some(user_with(Vec::new(), "wrong"));
    pair.drive();
    let failed = client_auth_events(&pair).into_iter().find_map(|e| match e {
        userauth::ClientEvent::Failed { methods_left } => Some(methods_left.clone()),
        _ => None,
    });
    assert_eq!(failed, Some(vec!["password".to_owned()]));
    assert!(!pair.client.is_authenticated() && !pair.server.is_authenticated());
    assert_eq!(pair.server.userauth().unwrap().failures(), 3);
    assert_eq!(pair.client_closed(), None);
    let reason = DisconnectReason::NO_MORE_AUTH_METHODS_AVAILABLE;
    pair.client.disconnect(reason, "No more authentication methods available");
    pair.drive();
    assert_eq!(pair.client_closed(), Some((None, Initiator::Local)));
    match pair.server_closed() {
        Some((Some(Error::DisconnectReceived { reason: got, .. }), Initiator::Remote)) => {
            assert_eq!(*got, reason);
        }
        other => panic!("{other:?}"),
    }
}

/// Regression (found by the server adapter's tests): a client that gives up on passwords
/// through `userauth_mut()` sees `Failed` at once, not only when the server next says
/// something (which it never does: it waits for the next request).
#[test]
fn giving_up_through_userauth_mut_reports_failed_without_a_server_message() {
    let config = server_config_with(|c| c.methods = vec![Method::Password], Default::default());
    let mut pair = StackPair::new(client_config(), config, "alice");
    pair.decider = Some(Box::new(password_backend));
    pair.answerer = Some(Box::new(|event, client| {
        if let userauth::ClientEvent::PasswordRequested { .. } = event {
            client.password_ready(None).unwrap();
        }
    }));
    pair.drive();
    let failed = client_auth_events(&pair).into_iter().find_map(|e| match e {
        userauth::ClientEvent::Failed { methods_left } => Some(methods_left.clone()),
        _ => None,
    });
    assert_eq!(failed, Some(vec!["password".to_owned()]));
    assert_eq!(pair.server.userauth().unwrap().failures(), 0, "no password was sent");
}

/// `MaxAuthTries` failures end the connection from the server with OpenSSH's text.
#[test]
fn max_auth_tries_ends_the_connection() {
    let config = server_config_with(
        |c| {
            c.methods = vec![Method::Password];
            c.max_auth_tries = 2;
        },
        Default::default(),
    );
    let mut pair = StackPair::new(client_config(), config, "alice");
    pair.decider = Some(Box::new(password_backend));
    pair.answerer = Some(user_with(Vec::new(), "wrong"));
    pair.drive();
    assert!(!pair.client.is_authenticated() && !pair.server.is_authenticated());
    let error: Error = PeerMisbehaved::TooManyAuthFailures.into();
    assert_eq!(pair.server_closed(), Some((Some(&error), Initiator::Local)));
    match pair.client_closed() {
        Some((Some(Error::DisconnectReceived { reason, description }), Initiator::Remote)) => {
            assert_eq!(*reason, DisconnectReason::PROTOCOL_ERROR);
            assert!(description.contains("Too many authentication failures"), "{description}");
        }
        other => panic!("{other:?}"),
    }
}

/// With `AuthenticationMethods publickey,password`, the key earns a partial success and the
/// password completes the login; the restrictions of both decisions come back in order.
#[test]
fn authentication_methods_need_every_method_in_turn() {
    let key = user_key(1);
    let config = server_config_with(
        |c| c.authentication_methods = vec![vec![Method::PublicKey, Method::Password]],
        Default::default(),
    );
    let mut pair = StackPair::new(client_config(), config, "alice");
    pair.client.add_identity(key.public_key().clone());
    pair.decider = Some(Box::new(|_, attempt| {
        Some(match attempt {
            Attempt::PublicKeyQuery { .. } | Attempt::PublicKey { .. } => {
                Decision::Accept("key".to_owned())
            }
            Attempt::Password { password, .. } if password.matches(PASSWORD.as_bytes()) => {
                Decision::Accept("password".to_owned())
            }
            _ => Decision::Reject,
        })
    }));
    pair.answerer = Some(user_with(vec![key], PASSWORD));
    pair.drive();
    assert_authenticated(&pair);
    let events = client_auth_events(&pair);
    assert!(events
        .iter()
        .any(|e| matches!(e, userauth::ClientEvent::PartialSuccess { method: Method::PublicKey })));
    assert!(events
        .iter()
        .any(|e| matches!(e, userauth::ClientEvent::Succeeded { method: Method::Password })));
    let (_, methods, restrictions) = authenticated(&pair).unwrap();
    assert_eq!(methods, [Method::PublicKey, Method::Password]);
    assert_eq!(restrictions, ["key", "password"]);
}

/// A signature by another key fails at the server without the backend hearing of it; with
/// nothing else to try, the client gives up.
#[test]
fn a_wrong_signature_never_reaches_the_backend() {
    let (key, forger) = (user_key(1), user_key(2));
    let seen = Seen::default();
    let config = server_config_with(|c| c.methods = vec![Method::PublicKey], Default::default());
    let mut pair = StackPair::new(client_config(), config, "alice");
    pair.client.add_identity(key.public_key().clone());
    pair.decider = Some(recording(&seen, |_| Decision::Accept(())));
    pair.answerer = Some(Box::new(move |event, client| {
        if let userauth::ClientEvent::SignatureRequested { algorithm, data, .. } = event {
            client.signature_ready(Some(forger.sign(*algorithm, data).unwrap())).unwrap();
        }
    }));
    pair.drive();
    assert!(!pair.server.is_authenticated() && !pair.client.is_authenticated());
    assert!(seen.borrow().iter().all(|a| matches!(a, Attempt::PublicKeyQuery { .. })));
    assert!(client_auth_events(&pair)
        .iter()
        .any(|e| matches!(e, userauth::ClientEvent::Failed { .. })));
    assert_eq!(pair.server.userauth().unwrap().failures(), 1);
}

/// A key the backend does not accept gets no `PK_OK`: the client never signs, and goes on to
/// its password.
#[test]
fn a_key_the_backend_refuses_is_never_signed_with() {
    let key = user_key(1);
    let mut pair = password_pair();
    pair.client.add_identity(key.public_key().clone());
    pair.answerer = Some(user_with(vec![key], PASSWORD));
    pair.drive();
    assert_authenticated(&pair);
    assert!(!client_auth_events(&pair)
        .iter()
        .any(|e| matches!(e, userauth::ClientEvent::SignatureRequested { .. })));
    assert_eq!(authenticated(&pair).unwrap().1, [Method::Password]);
}

/// An expired password is changed in the same connection: the backend asks for a change, the
/// client sends old and new, and the backend sees both.
#[test]
fn an_expired_password_is_changed_and_the_login_succeeds() {
    let seen = Seen::default();
    let config = server_config_with(|c| c.methods = vec![Method::Password], Default::default());
    let mut pair = StackPair::new(client_config(), config, "alice");
    pair.decider = Some(recording(&seen, |attempt| match attempt {
        Attempt::Password { password, new_password: None } if password.matches(b"old") => {
            Decision::ChangePassword { prompt: "Password expired".into() }
        }
        Attempt::Password { password, new_password: Some(new) }
            if password.matches(b"old") && new.matches(b"new") =>
        {
            Decision::Accept(())
        }
        _ => Decision::Reject,
    }));
    pair.answerer = Some(Box::new(|event, client| {
        if let userauth::ClientEvent::PasswordRequested { change_prompt, .. } = event {
            let answer = match change_prompt {
                None => PasswordAnswer::Password("old".into()),
                Some(prompt) => {
                    assert_eq!(prompt, "Password expired");
                    PasswordAnswer::Change { old: "old".into(), new: "new".into() }
                }
            };
            client.password_ready(Some(answer)).unwrap();
        }
    }));
    pair.drive();
    assert_authenticated(&pair);
    assert_eq!(seen.borrow().len(), 2);
}

/// `none` logs in when it is enabled and the backend allows it.
#[test]
fn none_logs_in_when_the_backend_allows_it() {
    let config = server_config_with(|c| c.methods.push(Method::None), Default::default());
    let mut pair = StackPair::new(client_config(), config, "guest");
    pair.decider = Some(Box::new(|_, attempt| {
        Some(if matches!(attempt, Attempt::None) { Decision::Accept(()) } else { Decision::Reject })
    }));
    pair.drive();
    assert_authenticated(&pair);
    assert_eq!(authenticated(&pair).unwrap().1, [Method::None]);
}

/// `user:style` logs in as `user` with the style set aside, as OpenSSH's `auth2.c` splits it;
/// the public key signature still covers the name as sent.
#[test]
fn a_login_style_is_split_from_the_user_name() {
    let key = user_key(1);
    let users = Rc::new(RefCell::new(Vec::new()));
    let mut pair = StackPair::new(client_config(), server_config(), "alice:skey");
    pair.client.add_identity(key.public_key().clone());
    let seen = Rc::clone(&users);
    pair.decider = Some(Box::new(move |user, attempt| {
        seen.borrow_mut().push(user.to_owned());
        Some(match attempt {
            Attempt::PublicKeyQuery { .. } | Attempt::PublicKey { .. } => Decision::Accept(()),
            _ => Decision::Reject,
        })
    }));
    pair.answerer = Some(user_with(vec![key], "wrong"));
    pair.drive();
    assert_authenticated(&pair);
    assert!(users.borrow().iter().all(|u| u == "alice"), "{:?}", users.borrow());
    assert_eq!(pair.server.user(), Some("alice"));
    assert_eq!(pair.server.login_style(), Some("skey"));
    assert_eq!(authenticated(&pair).unwrap().0, "alice");
}

/// The server announces the signature algorithms of its user authentication config in
/// `server-sig-algs`, and the client picks its RSA algorithm from them: with only
/// `rsa-sha2-256` accepted, an RSA key is offered as `rsa-sha2-256`.
#[test]
fn rsa_keys_sign_with_the_algorithm_the_server_announces() {
    let rsa = fixtures::rsa_host_key();
    let seen = Seen::default();
    let config = server_config_with(
        |c| c.publickey_algorithms = vec![SignatureAlgorithm::RsaSha256],
        Default::default(),
    );
    let mut pair = StackPair::new(client_config(), config, "alice");
    pair.client.add_identity(rsa.public_key().clone());
    pair.decider = Some(recording(&seen, |attempt| match attempt {
        Attempt::PublicKeyQuery { .. } | Attempt::PublicKey { .. } => Decision::Accept(()),
        _ => Decision::Reject,
    }));
    let signer = std::sync::Arc::clone(&rsa);
    pair.answerer = Some(Box::new(move |event, client| {
        if let userauth::ClientEvent::SignatureRequested { algorithm, data, .. } = event {
            client.signature_ready(Some(signer.sign(*algorithm, data).unwrap())).unwrap();
        }
    }));
    pair.drive();
    assert_authenticated(&pair);
    let algorithms: Vec<_> =
        seen.borrow()
            .iter()
            .filter_map(|a| match a {
                Attempt::PublicKeyQuery { algorithm, .. }
                | Attempt::PublicKey { algorithm, .. } => Some(*algorithm),
                _ => None,
            })
            .collect();
    assert_eq!(algorithms, [SignatureAlgorithm::RsaSha256, SignatureAlgorithm::RsaSha256]);
    let announced = pair.client_events().iter().find_map(|e| match e {
        ClientEvent::Transport(transport::Event::ExtInfoReceived { extensions }) => {
            extensions.iter().find(|(n, _)| n == "server-sig-algs").map(|(_, v)| v.clone())
        }
        _ => None,
    });
    assert_eq!(announced.as_deref(), Some(&b"rsa-sha2-256"[..]));
}

/// `zlib@openssh.com` compresses nothing before authentication and both directions after it,
/// on both sides, and data still flows.
#[test]
fn delayed_compression_starts_at_authentication() {
    let mut server_transport = server_transport();
    server_transport.algorithms.configure(Category::Compression, "zlib@openssh.com").unwrap();
    let mut client_transport = transport::ClientConfig::default();
    client_transport.algorithms.configure(Category::Compression, "zlib@openssh.com").unwrap();
    let server = server_config_full(server_transport, |_| {}, Default::default());
    let client = client_config_full(client_transport, |_| {}, Default::default());
    let mut pair = StackPair::new(client, server, "alice");
    pair.host_key_decision = None;
    pair.drive();
    assert_eq!(pair.client.transport().compression_active(), (false, false));
    pair.host_key_decision = Some(true);
    pair.client.host_key_decided(pair.time, true).unwrap();
    pair.decider = Some(Box::new(password_backend));
    pair.answerer = Some(user_with(Vec::new(), PASSWORD));
    pair.drive();
    assert_authenticated(&pair);
    assert_eq!(pair.client.transport().compression_active(), (true, true));
    assert_eq!(pair.server.transport().compression_active(), (true, true));
    let (client_id, server_id) = open_session(&mut pair);
    let text = b"compressible ".repeat(1000);
    pair.server.connection_mut().unwrap().send_data(server_id, &text).unwrap();
    pair.drive();
    assert_eq!(read_client(&mut pair, client_id, Stream::Data), text);
}

/// A failure waits out the failure delay in virtual time: nothing reaches the client until the
/// server's timer fires.
#[test]
fn failures_wait_out_the_delay_in_virtual_time() {
    let config = server_config_with(
        |c| {
            c.methods = vec![Method::Password];
            c.failure_delay = FailureDelay::new([9; 32]);
        },
        Default::default(),
    );
    let mut pair = StackPair::new(client_config(), config, "alice");
    pair.decider = Some(Box::new(password_backend));
    let typed = Rc::new(RefCell::new(0));
    let count = Rc::clone(&typed);
    pair.answerer = Some(Box::new(move |event, client| {
        if let userauth::ClientEvent::PasswordRequested { .. } = event {
            *count.borrow_mut() += 1;
            let password = if *count.borrow() == 1 { "wrong" } else { PASSWORD };
            client.password_ready(Some(PasswordAnswer::Password(password.into()))).unwrap();
        }
    }));
    pair.drive();
    assert_eq!(*typed.borrow(), 1, "the failure is held back");
    let deadline = pair.server.poll_timeout().unwrap();
    let delay = deadline - pair.time;
    assert!(delay >= Duration::from_millis(5) && delay < Duration::from_millis(10), "{delay:?}");
    pair.advance(delay);
    assert_eq!(*typed.borrow(), 2);
    assert_authenticated(&pair);
}

/// A decision for a question nobody asked is the application's mistake: it is refused and the
/// connection goes on.
#[test]
fn a_decision_for_an_unknown_question_changes_nothing() {
    let mut pair = password_pair();
    pair.decider = None;
    pair.drive();
    let id = pair.server_events().iter().find_map(|e| match e {
        ServerEvent::Auth(userauth::ServerEvent::AuthRequested { id, .. }) => Some(*id),
        _ => None,
    });
    let id = id.unwrap();
    let pending = pair.server.auth_decided(pair.time, id, Decision::Reject);
    assert_eq!(pending, Ok(()));
    let again = pair.server.auth_decided(pair.time, id, Decision::Reject);
    assert_eq!(again, Err(LocalMisuse::UnknownId.into()));
    assert_eq!(pair.server_closed(), None);
    pair.decider = Some(Box::new(password_backend));
    pair.drive();
    assert_authenticated(&pair);
}

/// Channel flow after a login uses the connection defaults of each side's config.
#[test]
fn the_connection_layer_uses_the_configured_window() {
    let window = connection::Config { window_size: 1000, ..Default::default() };
    let server = server_config_with(|_| {}, window.clone());
    let mut pair = StackPair::new(client_config_with(|_| {}, window), server, "alice");
    pair.decider = Some(Box::new(password_backend));
    pair.answerer = Some(user_with(Vec::new(), PASSWORD));
    pair.drive();
    let (client_id, server_id) = open_session(&mut pair);
    assert_eq!(pair.client.connection().unwrap().send_window(client_id), Some(1000));
    assert_eq!(pair.server.connection().unwrap().send_window(server_id), Some(1000));
}
