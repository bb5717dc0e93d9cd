//! Transport security and roles against real nodes: every RPC needs credentials, roles limit
//! what an identity may do, certificates from another CA are refused (clients and nodes), and a
//! plain-text client gets a clear "this node requires TLS".

use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::Duration;

use tally_client::{ClientError, Credentials};
use tally_node::grpc::auth::{Role, METHOD_ROLES};
use tally_proto::v1;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Status};

use crate::harness::{binary, eventually, TestCerts, TestCluster, CONVERGE_TIMEOUT, READER_TOKEN};

/// A TLS channel to `addr` trusting `ca`, presenting `identity` if given.
async fn channel(
    addr: &str,
    ca: &std::path::Path,
    identity: Option<(&std::path::Path, &std::path::Path)>,
) -> Channel {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(ca).expect("read CA")));
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(
            std::fs::read(cert).expect("read cert"),
            std::fs::read(key).expect("read key"),
        ));
    }
    Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_lazy()
}

/// Calls `path` with an empty message (the role check runs before the message is decoded).
async fn raw_call(channel: Channel, path: &str, token: Option<&str>) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|error| Status::unavailable(error.to_string()))?;
    let mut request = tonic::Request::new(());
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let path = PathAndQuery::from_str(path).unwrap();
    tokio::time::timeout(Duration::from_secs(10), grpc.unary(request, path, codec))
        .await
        .map_err(|_| Status::deadline_exceeded("no answer"))?
        .map(|_| ())
}

#[tokio::test]
async fn every_rpc_needs_credentials_and_its_role() {
    let cluster = TestCluster::start(1, &[]).await;
    let addr = &cluster.node(1).addr;
    let certs = &cluster.certs;
    let anonymous = channel(addr, &certs.ca, None).await;
    let (reader_cert, reader_key) = certs.client_cert("reader");
    let reader = channel(addr, &certs.ca, Some((&reader_cert, &reader_key))).await;
    for (path, role) in METHOD_ROLES {
        let status = raw_call(anonymous.clone(), path, None).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{path}: {status:?}");
        assert!(
            status.message().contains("no credentials"),
            "{path}: {status:?}"
        );

        let bad_token = raw_call(anonymous.clone(), path, Some("not-a-token")).await;
        assert_eq!(
            bad_token.unwrap_err().code(),
            Code::Unauthenticated,
            "{path}"
        );

        for (who, result) in [
            ("reader cert", raw_call(reader.clone(), path, None).await),
            (
                "reader token",
                raw_call(anonymous.clone(), path, Some(READER_TOKEN)).await,
            ),
        ] {
            if *role == Role::LedgerRead {
                if let Err(status) = result {
                    assert!(
                        !matches!(
                            status.code(),
                            Code::PermissionDenied | Code::Unauthenticated
                        ),
                        "{who} may call {path}: {status:?}"
                    );
                }
            } else {
                let status = result.unwrap_err();
                assert_eq!(
                    status.code(),
                    Code::PermissionDenied,
                    "{who} {path}: {status:?}"
                );
                assert!(status.message().contains(role.name()), "{status:?}");
            }
        }
    }
}

#[tokio::test]
async fn a_read_only_identity_cannot_write() {
    let cluster = TestCluster::start(1, &[]).await;
    let deadline = Duration::from_secs(10);
    for credentials in [
        cluster.certs.credentials("reader"),
        cluster.certs.token_credentials(READER_TOKEN),
    ] {
        let reader = cluster.client_with(&credentials, deadline).await;
        assert!(reader.lookup_accounts(&[1]).await.unwrap().is_empty());
        let account = tally_client::AccountBuilder::new(1, 1, 1).build();
        match reader.create_accounts(vec![account]).await {
            Err(ClientError::Rejected { code, message }) => {
                assert_eq!(code, Code::PermissionDenied);
                assert!(message.contains("ledger.write"), "{message}");
            }
            other => panic!("a reader created an account: {other:?}"),
        }
        let txn = tally_client::Txn::default();
        let refused = reader.submit_txn(&txn).await.unwrap_err();
        assert!(refused.to_string().contains("records.write"), "{refused}");
        assert!(reader
            .checkpoint()
            .await
            .unwrap_err()
            .to_string()
            .contains("admin"));
    }
    // tally-pay's identity may write records and money, but not run the cluster.
    let pay = cluster
        .client_with(&cluster.certs.credentials("tally-pay"), deadline)
        .await;
    let account = tally_client::AccountBuilder::new(7, 1, 1).build();
    assert_eq!(
        pay.create_accounts(vec![account]).await.unwrap(),
        vec![tally_client::CreateAccountResult::Ok]
    );
    let refused = pay.checkpoint().await.unwrap_err();
    assert!(refused.to_string().contains("admin"), "{refused}");
}

#[tokio::test]
async fn certificates_from_another_ca_are_refused_for_clients_and_nodes() {
    let cluster = TestCluster::start(3, &[]).await;
    let foreign_dir = cluster.dir().join("foreign");
    let foreign = TestCerts::create(&foreign_dir, 4);
    let addr = cluster.node(1).addr.clone();

    // A client certificate from another CA fails the handshake: no call gets through.
    let (cert, key) = foreign.client_cert("admin");
    let stranger = channel(&addr, &cluster.certs.ca, Some((&cert, &key))).await;
    let status = raw_call(stranger, "/tally.v1.Admin/Status", None)
        .await
        .unwrap_err();
    assert!(
        !matches!(status.code(), Code::Ok | Code::PermissionDenied),
        "{status:?}"
    );
    // ... and tally-client refuses it before connecting, naming the file.
    let mut credentials = foreign.credentials("admin");
    credentials.ca = Some(cluster.certs.ca.clone());
    let mut options = tally_client::ClientOptions::default();
    credentials.apply(&mut options).unwrap();
    let error = tally_client::Client::connect(cluster.addrs(), options)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ClientError::Credentials(message) if message.contains("client-admin.pem") && message.contains("wrong CA")),
        "{error}"
    );

    // A node certificate from another CA cannot send Raft messages.
    let (cert, key) = foreign.node_cert(2);
    let impostor = channel(&addr, &cluster.certs.ca, Some((&cert, &key))).await;
    for path in ["/tally.v1.Raft/Vote", "/tally.v1.Raft/AppendEntries"] {
        let status = raw_call(impostor.clone(), path, None).await.unwrap_err();
        assert_ne!(status.code(), Code::Ok, "{path}");
    }
    // A client certificate of the right CA is not a node certificate either.
    let (cert, key) = cluster.certs.client_cert("admin");
    let client = channel(&addr, &cluster.certs.ca, Some((&cert, &key))).await;
    let status = raw_call(client, "/tally.v1.Raft/Vote", None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("node"), "{status:?}");

    // A node with another CA's certificate cannot join: it never receives the log.
    let mut outsider = cluster.spawn_node(4, &foreign);
    let short = cluster
        .client_with(&cluster.certs.credentials("admin"), Duration::from_secs(8))
        .await;
    let joined = short
        .add_learner(v1::Node {
            id: 4,
            addr: outsider.addr.clone(),
        })
        .await;
    let own_view = tally_client::Client::connect(vec![outsider.addr.clone()], {
        let mut options = tally_client::ClientOptions::default();
        foreign.credentials("admin").apply(&mut options).unwrap();
        options
    })
    .await
    .unwrap();
    let status = eventually(
        CONVERGE_TIMEOUT,
        "node 4 to answer its own CA's client",
        || {
            let own_view = own_view.clone();
            let addr = outsider.addr.clone();
            async move { own_view.status(&addr).await.ok() }
        },
    )
    .await;
    // Raft may commit the learner into the membership (that needs only the voters); what the
    // foreign certificate must prevent is the log reaching it.
    assert_eq!(
        status.last_applied, 0,
        "node 4 received the log through another CA's certificate (add_learner: {joined:?})"
    );
    outsider.stop();
    // The cluster itself is unharmed.
    let account = tally_client::AccountBuilder::new(9, 1, 1).build();
    assert_eq!(
        cluster.client.create_accounts(vec![account]).await.unwrap(),
        vec![tally_client::CreateAccountResult::Ok]
    );
}

#[tokio::test]
async fn plain_text_and_bad_certificates_fail_with_clear_errors() {
    let cluster = TestCluster::start(1, &[]).await;
    let insecure = Credentials {
        insecure: true,
        ..Credentials::default()
    };
    let plain = cluster
        .client_with(&insecure, Duration::from_secs(10))
        .await;
    let error = plain.lookup_accounts(&[1]).await.unwrap_err();
    assert!(error.to_string().contains("requires TLS"), "{error}");

    // tallyctl: no CA at all, then explicit plain text.
    let tallyctl = |args: &[&str], env: &[(String, String)]| {
        let output = Command::new(binary("tallyctl"))
            .args(["--cluster", &cluster.cluster_arg(), "--timeout", "10"])
            .args(args)
            .env_remove("TALLY_CA")
            .env_remove("TALLY_CERT")
            .env_remove("TALLY_KEY")
            .env_remove("TALLY_TOKEN")
            .env_remove("TALLY_INSECURE")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .output()
            .expect("run tallyctl");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stderr).to_string(),
        )
    };
    let (ok, stderr) = tallyctl(&["account", "get", "1"], &[]);
    assert!(!ok && stderr.contains("--ca"), "{stderr}");
    let (ok, stderr) = tallyctl(&["--insecure", "account", "get", "1"], &[]);
    assert!(!ok && stderr.contains("requires TLS"), "{stderr}");
    let (ok, stderr) = tallyctl(&["status"], &cluster.certs.env("admin"));
    assert!(ok, "{stderr}");

    // An expired client certificate is refused before connecting, naming the file.
    let expired = cluster
        .certs
        .authority
        .issue_client(
            "admin",
            tally_tls::Validity {
                start_days: -30,
                end_days: -1,
            },
        )
        .unwrap();
    let (cert, _) = expired
        .write(&cluster.dir().join("old"), "expired")
        .unwrap();
    let mut env = cluster.certs.env("admin");
    env.retain(|(name, _)| name != "TALLY_CERT" && name != "TALLY_KEY");
    env.push(("TALLY_CERT".into(), cert.display().to_string()));
    env.push((
        "TALLY_KEY".into(),
        cert.with_extension("key").display().to_string(),
    ));
    let (ok, stderr) = tallyctl(&["account", "get", "1"], &env);
    assert!(
        !ok && stderr.contains("expired.pem") && stderr.contains("expired"),
        "{stderr}"
    );

    // A node refuses to start with another node's certificate, naming the file.
    let (cert, key) = cluster.certs.node_cert(1);
    let output = Command::new(binary("tally-node"))
        .args(["serve", "--id", "2", "--listen", "127.0.0.1:1", "--data"])
        .arg(cluster.dir().join("never"))
        .arg("--ca")
        .arg(&cluster.certs.ca)
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .stdin(Stdio::null())
        .output()
        .expect("run tally-node");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("node-1.pem") && stderr.contains("not of node 2"),
        "{stderr}"
    );
}

/// Membership changes land in the audit trail (`tallyctl audit`) with the caller's identity, and a
/// peer must present the certificate of the node id it was added as: a genuine node of the
/// cluster's CA listening at the address given for another id never receives the log.
#[tokio::test]
async fn membership_changes_are_audited_and_peers_must_be_the_node_they_claim() {
    let cluster = TestCluster::start(3, &[]).await;
    let certs = &cluster.certs;
    for id in [4, 5] {
        certs
            .authority
            .issue_node(id, &["127.0.0.1".into()], tally_tls::Validity::days(30))
            .unwrap()
            .write(&certs.dir, &tally_tls::node_name(id))
            .unwrap();
    }
    let short = cluster
        .client_with(&certs.credentials("admin"), Duration::from_secs(8))
        .await;
    // Node 5's certificate at the address given for node 6: the leader expects `node-6`.
    let mut five = cluster.spawn_node(5, certs);
    let added = short
        .add_learner(v1::Node {
            id: 6,
            addr: five.addr.clone(),
        })
        .await;
    // A genuine node 4, added after it: once it has the log, the leader has had as long to
    // send it to "node 6".
    let mut four = cluster.spawn_node(4, certs);
    let index = eventually(CONVERGE_TIMEOUT, "node 4 to be added as a learner", || {
        let short = short.clone();
        let addr = four.addr.clone();
        async move { short.add_learner(v1::Node { id: 4, addr }).await.ok() }
    })
    .await;
    eventually(CONVERGE_TIMEOUT, "node 4 to receive the log", || {
        let client = cluster.client.clone();
        let addr = four.addr.clone();
        async move { (client.status(&addr).await.ok()?.last_applied >= index).then_some(()) }
    })
    .await;
    let status = cluster
        .client
        .status(&five.addr)
        .await
        .expect("node 5 answers");
    assert_eq!(
        status.last_applied, 0,
        "a node certificate for node 5 was accepted as node 6 (add_learner: {added:?})"
    );

    let output = Command::new(binary("tallyctl"))
        .args(["--cluster", &cluster.cluster_arg(), "--json", "audit"])
        .args(["--action", "cluster."])
        .envs(certs.env("admin"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let entries: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let entries = entries.as_array().unwrap();
    let learner = entries
        .iter()
        .find(|e| {
            e["action"] == "cluster.add_learner"
                && e["object_id"] == format!("node-4 {}", four.addr)
        })
        .unwrap_or_else(|| panic!("no audit entry for adding node 4: {entries:?}"));
    assert_eq!(learner["actor"], "grpc:admin", "{learner}");
    assert!(
        learner["source"]
            .as_str()
            .unwrap_or("")
            .starts_with("127.0.0.1:"),
        "{learner}"
    );
    assert!(learner["id"].as_str().unwrap().starts_with("aud_"));
    four.stop();
    five.stop();
}
