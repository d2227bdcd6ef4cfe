import Foundation

/// The password normalisation SCRAM asks for (RFC 4013), to the extent PostgreSQL relies on it.
///
/// PostgreSQL runs passwords through SASLprep before hashing, and when the result would contain a
/// prohibited character it falls back to the raw bytes instead of failing. Sluice mirrors that so
/// that verifiers it computes match the server's:
/// - pure ASCII passwords are used unchanged (SASLprep cannot alter them);
/// - otherwise non-ASCII spaces map to U+0020, "mapped to nothing" characters are dropped, the text
///   is NFKC-normalised, and if a prohibited character remains the raw UTF-8 bytes are used.
///
/// Not done: the unassigned-code-point check (RFC 3454 table A.1) and the bidirectional-text rules
/// (RFC 3454 section 6). A password that PostgreSQL rejects only for those reasons is normalised
/// here instead of passed raw, so such a password may not match a PostgreSQL-made verifier.
public enum SASLprep {
    /// The bytes to feed PBKDF2 for `password`.
    public static func prepare(_ password: String) -> [UInt8] {
        let raw = Array(password.utf8)
        if raw.allSatisfy({ $0 < 0x80 }) { return raw }

        var mapped = String.UnicodeScalarView()
        for scalar in password.unicodeScalars {
            if isMappedToNothing(scalar.value) { continue }
            mapped.append(isNonASCIISpace(scalar.value) ? " " : scalar)
        }
        let normalised = String(mapped).precomposedStringWithCompatibilityMapping
        if normalised.unicodeScalars.contains(where: { isProhibited($0.value) }) { return raw }
        return Array(normalised.utf8)
    }

    // RFC 3454 table B.1.
    private static func isMappedToNothing(_ value: UInt32) -> Bool {
        switch value {
        case 0x00AD, 0x034F, 0x1806, 0x180B...0x180D, 0x200B...0x200D, 0x2060, 0xFE00...0xFE0F, 0xFEFF:
            return true
        default:
            return false
        }
    }

    // RFC 3454 table C.1.2.
    private static func isNonASCIISpace(_ value: UInt32) -> Bool {
        switch value {
        case 0x00A0, 0x1680, 0x2000...0x200B, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    // RFC 4013 section 2.3: tables C.1.2, C.2.1, C.2.2, C.3, C.4, C.5, C.6, C.7, C.8 and C.9.
    private static func isProhibited(_ value: UInt32) -> Bool {
        if isNonASCIISpace(value) { return true }
        switch value {
        case 0x0000...0x001F, 0x007F:  // C.2.1
            return true
        case 0x0080...0x009F, 0x06DD, 0x070F, 0x180E, 0x200C, 0x200D, 0x2028, 0x2029, 0x2060...0x2063,
            0x206A...0x206F, 0xFEFF, 0xFFF9...0xFFFC, 0x1D173...0x1D17A:  // C.2.2
            return true
        case 0xE000...0xF8FF, 0xF0000...0xFFFFD, 0x100000...0x10FFFD:  // C.3
            return true
        case 0xFDD0...0xFDEF:  // C.4, the contiguous block
            return true
        case 0xD800...0xDFFF:  // C.5, unreachable from a Swift String but listed for completeness
            return true
        case 0xFFFD:  // C.6 (FFF9-FFFC are already covered by C.2.2)
            return true
        case 0x2FF0...0x2FFB:  // C.7
            return true
        case 0x0340, 0x0341, 0x200E, 0x200F, 0x202A...0x202E:  // C.8 (206A-206F covered above)
            return true
        case 0xE0001, 0xE0020...0xE007F:  // C.9
            return true
        default:
            // C.4: the last two code points of every plane are non-characters.
            return value & 0xFFFE == 0xFFFE
        }
    }
}
