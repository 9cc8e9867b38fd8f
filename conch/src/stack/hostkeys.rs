//! The server's side of OpenSSH's host key rotation (`PROTOCOL` §2.5): after authentication
//! it announces every host key with `hostkeys-00@openssh.com`, and answers the client's
//! `hostkeys-prove-00@openssh.com` with a signature by each key asked about.

use crate::connection::msgs::GlobalRequest;
use crate::keys::{KeyType, SignatureAlgorithm};
use crate::wire::Writer;

use super::ServerStack;

/// The request name signed in each proof.
const PROVE_REQUEST: &str = "hostkeys-prove-00@openssh.com";

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
            let mut data = Vec::new();
            Writer::new(&mut data)
                .write_string(PROVE_REQUEST.as_bytes())
                .write_string(session_id)
                .write_string(blob);
            match signer.sign(algorithm, &data) {
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
