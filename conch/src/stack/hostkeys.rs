//! The server's side of OpenSSH's host key rotation (`PROTOCOL` §2.5): after authentication
//! it announces every host key with `hostkeys-00@openssh.com`, and answers the client's
//! `hostkeys-prove-00@openssh.com` with a signature by each key asked about.

use super::ServerStack;
use crate::connection::msgs::GlobalRequest;
use crate::keys::{KeyType, SignatureAlgorithm};

impl<R> ServerStack<R> {
    /// The `hostkeys-00@openssh.com` request announcing every host key (each public key once),
    /// to send without a reply once the user is authenticated.
    pub fn host_keys_announcement(&self) -> GlobalRequest {
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for signer in &self.config().transport().host_keys {
            let blob = signer.public_key().to_blob();
            if !keys.contains(&blob) {
                keys.push(blob);
            }
        }
        GlobalRequest::HostKeys { keys }
    }

    /// The proofs for a `hostkeys-prove-00@openssh.com` request: for each key blob, a signature
    /// over `string "hostkeys-prove-00@openssh.com" || string session id || string key` made
    /// with that host key. `None` (answer failure) if a blob is not one of our host keys or a
    /// signature cannot be made. RSA keys sign with the negotiated RSA algorithm, or
    /// `rsa-sha2-512`, as OpenSSH does.
    pub fn prove_host_keys(&self, blobs: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
        let transport = self.transport();
        let session_id = transport.session_id()?;
        let negotiated = transport.negotiated().map(|n| n.host_key);
        let mut proofs = Vec::with_capacity(blobs.len());
        for blob in blobs {
            let signer = self
                .config()
                .transport()
                .host_keys
                .iter()
                .find(|s| s.public_key().to_blob() == *blob)?;
            let key = signer.public_key();
            let algorithm = match key.key_type() {
                KeyType::Rsa => match negotiated {
                    Some(a @ (SignatureAlgorithm::RsaSha256 | SignatureAlgorithm::RsaSha512)) => a,
                    _ => SignatureAlgorithm::RsaSha512,
                },
                _ => SignatureAlgorithm::ALL.into_iter().find(|a| key.supports(*a))?,
            };
            match signer.sign_hostkeys_proof(algorithm, session_id) {
                Ok(signature) => proofs.push(signature),
                Err(err) => {
                    log::warn!(
                        "hostkeys-prove: signing with a {} key failed: {err}",
                        key.key_type().name()
                    );
                    return None;
                }
            }
        }
        Some(proofs)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::crypto::OsRandom;
    use crate::keys::{HostKeySigner, PrivateKey, SignatureAlgorithm};
    use crate::stack::{ClientStackConfig, ServerStackConfig};
    use crate::testing::StackPair;
    use crate::wire::Writer;
    use crate::{connection, transport, userauth};

    /// Every host key is announced once; each proof verifies over the request name, the
    /// session id and the key; a key we do not hold gets no proofs at all.
    #[test]
    fn host_keys_are_announced_and_proven() {
        let ed: Arc<dyn HostKeySigner> = Arc::new(PrivateKey::ed25519_from_seed(&[1; 32]).unwrap());
        let second: Arc<dyn HostKeySigner> =
            Arc::new(PrivateKey::ed25519_from_seed(&[2; 32]).unwrap());
        let keys = vec![Arc::clone(&ed), Arc::clone(&second), Arc::clone(&ed)];
        let server = ServerStackConfig::with_host_keys(keys, &mut OsRandom::new()).unwrap();
        let client = ClientStackConfig::new(
            transport::ClientConfig::default(),
            userauth::ClientConfig::new(),
            connection::Config::default(),
        )
        .unwrap();
        let mut pair: StackPair<()> = StackPair::new(client, server, "alice");
        pair.drive();
        let blobs = vec![ed.public_key().to_blob(), second.public_key().to_blob()];
        match pair.server.host_keys_announcement() {
            super::GlobalRequest::HostKeys { keys } => assert_eq!(keys, blobs),
            other => panic!("expected hostkeys-00, got {other:?}"),
        }
        let session_id = pair.server.transport().session_id().unwrap().to_vec();
        let proofs = pair.server.prove_host_keys(&blobs).unwrap();
        assert_eq!(proofs.len(), 2);
        for (signer, proof) in [&ed, &second].into_iter().zip(&proofs) {
            let mut data = Vec::new();
            Writer::new(&mut data)
                .write_string(b"hostkeys-prove-00@openssh.com")
                .write_string(&session_id)
                .write_string(&signer.public_key().to_blob());
            signer.public_key().verify(SignatureAlgorithm::Ed25519, &data, proof).unwrap();
        }
        let stranger = PrivateKey::ed25519_from_seed(&[3; 32]).unwrap().public_key().to_blob();
        assert!(pair.server.prove_host_keys(&[blobs[0].clone(), stranger]).is_none());
    }
}
