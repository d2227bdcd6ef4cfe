/// Why a SCRAM-SHA-256 exchange failed, on either side of the pooler.
///
/// Descriptions are fit for logs and, for the client-facing cases, for an ErrorResponse: they
/// never quote message bytes, which may carry attacker-chosen text, nor any key material.
public enum SCRAMError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The message does not follow RFC 5802's grammar; the payload names the part at fault.
    case malformedMessage(String)
    /// The client asked for channel binding (`p=`): its TLS ends at Sluice, so no binding can hold.
    case channelBindingNotSupported
    /// The client sent an authorization identity (`a=`), which PostgreSQL does not support either.
    case authorizationIdentityNotSupported
    /// The peer sent a mandatory extension (`m=`), which no SCRAM-SHA-256 extension defines.
    case mandatoryExtensionNotSupported
    /// The nonce in the final message is not the one agreed, or the server's does not extend ours.
    case nonceMismatch
    /// The client's proof is wrong: wrong password, or a secret from another salt.
    case invalidProof
    /// The server's iteration count is below 1 or above ``SCRAMVerifier/maximumIterations``.
    case iterationCountOutOfRange
    /// The server's final signature does not match: it does not know the password's verifier.
    case serverSignatureMismatch
    /// The server ended the exchange with `e=`; the payload is its (sanitised) error value.
    case serverError(String)
    /// Pass-through keys were derived with another salt or iteration count than the server uses.
    case passThroughParametersMismatch
    /// A message arrived in a state that does not expect it; the payload names the state.
    case unexpectedMessage(state: String)

    /// A one-line explanation suitable for logs.
    public var description: String {
        switch self {
        case .malformedMessage(let detail):
            return "malformed SCRAM message (\(detail))"
        case .channelBindingNotSupported:
            return "SCRAM channel binding is not supported: TLS ends at Sluice"
        case .authorizationIdentityNotSupported:
            return "SCRAM authorization identity is not supported"
        case .mandatoryExtensionNotSupported:
            return "SCRAM mandatory extensions are not supported"
        case .nonceMismatch:
            return "SCRAM nonce does not match"
        case .invalidProof:
            return "SCRAM client proof is invalid"
        case .iterationCountOutOfRange:
            return "SCRAM iteration count is out of range (1...\(SCRAMVerifier.maximumIterations))"
        case .serverSignatureMismatch:
            return "SCRAM server signature does not match"
        case .serverError(let value):
            return "server rejected SCRAM authentication: \(value)"
        case .passThroughParametersMismatch:
            return
                "SCRAM pass-through needs the server's salt and iteration count to equal those of the auth_file "
                + "verifier; store the same SCRAM secret in both, or a plain password"
        case .unexpectedMessage(let state):
            return "unexpected SCRAM message in state \(state)"
        }
    }
}
