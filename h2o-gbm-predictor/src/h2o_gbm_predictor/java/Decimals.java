package h2ogbmpredictor;

import java.math.BigInteger;

/**
 * Doubles as text exactly as the Python side writes them: Python's {@code repr} (the CSV response) and orjson (the
 * JSON responses). Both print the shortest digit string that reads back as the same double (the closest such
 * string when several have that length); they differ only in layout. The digits come from the Ryu algorithm (Ulf
 * Adams, PLDI 2018), written here from its description; its two tables of 128-bit powers of five are computed once
 * at class load. The tests compare every output with Python's own over millions of doubles.
 *
 * <p>Also orjson's string escaping, for the unknown categorical levels echoed back in a response. Not thread-safe:
 * one instance per {@link RequestScorer}.
 */
public final class Decimals {
    private static final int POW5_BITCOUNT = 125;
    private static final int POW5_INV_BITCOUNT = 125;
    private static final long[] POW5_SPLIT = new long[2 * 326];
    private static final long[] POW5_INV_SPLIT = new long[2 * 342];

    static {
        BigInteger mask = BigInteger.ONE.shiftLeft(64).subtract(BigInteger.ONE);
        for (int i = 0; i < 326; i++) {
            BigInteger pow = BigInteger.valueOf(5).pow(i);
            int shift = pow.bitLength() - POW5_BITCOUNT;
            BigInteger value = shift >= 0 ? pow.shiftRight(shift) : pow.shiftLeft(-shift);
            POW5_SPLIT[2 * i] = value.and(mask).longValue();
            POW5_SPLIT[2 * i + 1] = value.shiftRight(64).longValue();
        }
        for (int i = 0; i < 342; i++) {
            BigInteger pow = BigInteger.valueOf(5).pow(i);
            BigInteger power = BigInteger.ONE.shiftLeft(pow.bitLength() - 1 + POW5_INV_BITCOUNT);
            BigInteger value = power.divide(pow).add(BigInteger.ONE);
            POW5_INV_SPLIT[2 * i] = value.and(mask).longValue();
            POW5_INV_SPLIT[2 * i + 1] = value.shiftRight(64).longValue();
        }
    }

    /** The shortest digits of the last {@link #shortest} call: value = digits * 10^exponent, no trailing zero. */
    private long digits;

    private int exponent;
    private final byte[] digitBytes = new byte[20];

    /** Appends {@code value} as Python's repr writes it; {@code value} must be finite. */
    void appendRepr(ByteSink out, double value) {
        append(out, value, -4, true);
    }

    /** Appends {@code value} as orjson writes it; {@code value} must be finite. */
    void appendJson(ByteSink out, double value) {
        append(out, value, -5, false);
    }

    /** Python's repr of a finite double, as a String (a JSON float sent for a categorical column). */
    String repr(double value) {
        ByteSink sink = new ByteSink(32);
        appendRepr(sink, value);
        return sink.toLatin1String();
    }

    /** Each finite value as repr (or, with {@code json}, orjson) writes it, one per line: for the tests. */
    public static String formatAll(double[] values, boolean json) {
        Decimals decimals = new Decimals();
        ByteSink sink = new ByteSink(values.length * 24);
        for (double value : values) {
            if (json) {
                decimals.appendJson(sink, value);
            } else {
                decimals.appendRepr(sink, value);
            }
            sink.put((byte) '\n');
        }
        return sink.toLatin1String();
    }

    /**
     * Fixed notation when the decimal exponent of the first digit is in [lowestFixed, 16), else d.ddd e+XX; Python pads
     * the exponent to two digits ({@code 1e-05}), orjson does not ({@code 1e-7}).
     */
    private void append(ByteSink out, double value, int lowestFixed, boolean padExponent) {
        // At most 1 sign + 17 digits + 23 zeros/point ("0.0000" or "...000.0") or 6 exponent characters.
        byte[] bytes = out.reserve(48);
        int at = out.length();
        long bits = Double.doubleToRawLongBits(value);
        if (bits < 0) {
            bytes[at++] = '-';
        }
        if ((bits & 0x7fffffffffffffffL) == 0) {
            bytes[at++] = '0';
            bytes[at++] = '.';
            bytes[at++] = '0';
            out.setLength(at);
            return;
        }
        shortest(bits);
        byte[] digitText = digitBytes;
        int first = writeDigits(digits, digitText); // the digits are digitText[first, 20)
        int length = 20 - first;
        int point = length + exponent; // value = 0.<digits> * 10^point
        int scientific = point - 1;
        if (scientific >= lowestFixed && scientific < 16) {
            if (point <= 0) {
                bytes[at++] = '0';
                bytes[at++] = '.';
                for (int zero = point; zero < 0; zero++) {
                    bytes[at++] = '0';
                }
                System.arraycopy(digitText, first, bytes, at, length);
                at += length;
            } else if (point >= length) {
                System.arraycopy(digitText, first, bytes, at, length);
                at += length;
                for (int zero = length; zero < point; zero++) {
                    bytes[at++] = '0';
                }
                bytes[at++] = '.';
                bytes[at++] = '0';
            } else {
                System.arraycopy(digitText, first, bytes, at, point);
                at += point;
                bytes[at++] = '.';
                System.arraycopy(digitText, first + point, bytes, at, length - point);
                at += length - point;
            }
            out.setLength(at);
            return;
        }
        bytes[at++] = digitText[first];
        if (length > 1) {
            bytes[at++] = '.';
            System.arraycopy(digitText, first + 1, bytes, at, length - 1);
            at += length - 1;
        }
        bytes[at++] = 'e';
        bytes[at++] = (byte) (scientific < 0 ? '-' : '+');
        int magnitude = Math.abs(scientific);
        if (magnitude >= 100) {
            bytes[at++] = (byte) ('0' + magnitude / 100);
        }
        if (magnitude >= 10 || padExponent) {
            bytes[at++] = (byte) ('0' + magnitude / 10 % 10);
        }
        bytes[at++] = (byte) ('0' + magnitude % 10);
        out.setLength(at);
    }

    private static final byte[] DIGIT_PAIRS = new byte[200];

    static {
        for (int pair = 0; pair < 100; pair++) {
            DIGIT_PAIRS[2 * pair] = (byte) ('0' + pair / 10);
            DIGIT_PAIRS[2 * pair + 1] = (byte) ('0' + pair % 10);
        }
    }

    /** Writes a positive value's decimal digits to end at text[20]; returns the index of the first. */
    private static int writeDigits(long value, byte[] text) {
        int at = 20;
        while (value >= 100_000_000L) { // eight digits at a time in int arithmetic
            long high = value / 100_000_000L;
            int low = (int) (value - high * 100_000_000L);
            value = high;
            for (int pair = 0; pair < 4; pair++) {
                int next = low / 100;
                int twoDigits = low - next * 100;
                low = next;
                text[--at] = DIGIT_PAIRS[2 * twoDigits + 1];
                text[--at] = DIGIT_PAIRS[2 * twoDigits];
            }
        }
        int rest = (int) value;
        while (rest >= 100) {
            int next = rest / 100;
            int twoDigits = rest - next * 100;
            rest = next;
            text[--at] = DIGIT_PAIRS[2 * twoDigits + 1];
            text[--at] = DIGIT_PAIRS[2 * twoDigits];
        }
        if (rest >= 10) {
            text[--at] = DIGIT_PAIRS[2 * rest + 1];
            text[--at] = DIGIT_PAIRS[2 * rest];
        } else {
            text[--at] = (byte) ('0' + rest);
        }
        return at;
    }

    private static int pow5bits(int e) {
        return (int) ((e * 1217359L) >>> 19) + 1;
    }

    private static int log10Pow2(int e) {
        return (int) ((e * 78913L) >>> 18);
    }

    private static int log10Pow5(int e) {
        return (int) ((e * 732923L) >>> 20);
    }

    private static boolean multipleOfPowerOf5(long value, int p) {
        int count = 0;
        while (value % 5 == 0) {
            value /= 5;
            count++;
        }
        return count >= p;
    }

    private static boolean multipleOfPowerOf2(long value, int p) {
        return (value & ((1L << p) - 1)) == 0;
    }

    /** (m * mul) >> j for a 55-bit m and the 128-bit mul at table[index], j in (64, 128). */
    private static long mulShift(long m, long[] table, int index, int j) {
        long mulLow = table[index];
        long mulHigh = table[index + 1];
        long high0 = Math.multiplyHigh(m, mulLow) + (mulLow < 0 ? m : 0);
        long low1 = m * mulHigh;
        long high1 = Math.multiplyHigh(m, mulHigh) + (mulHigh < 0 ? m : 0);
        long sum = high0 + low1;
        if (Long.compareUnsigned(sum, high0) < 0) {
            high1++;
        }
        int shift = j - 64;
        return (high1 << (64 - shift)) | (sum >>> shift);
    }

    /** Sets {@link #digits} and {@link #exponent} for a finite, non-zero double given by its bits. */
    private void shortest(long bits) {
        long ieeeMantissa = bits & ((1L << 52) - 1);
        int ieeeExponent = (int) ((bits >>> 52) & 0x7ff);
        int e2;
        long m2;
        if (ieeeExponent == 0) {
            e2 = 1 - 1023 - 52 - 2;
            m2 = ieeeMantissa;
        } else {
            e2 = ieeeExponent - 1023 - 52 - 2;
            m2 = (1L << 52) | ieeeMantissa;
        }
        boolean acceptBounds = (m2 & 1) == 0;
        long mv = 4 * m2;
        int mmShift = ieeeMantissa != 0 || ieeeExponent <= 1 ? 1 : 0;
        long vr;
        long vp;
        long vm;
        int e10;
        boolean vmIsTrailingZeros = false;
        boolean vrIsTrailingZeros = false;
        if (e2 >= 0) {
            int q = log10Pow2(e2) - (e2 > 3 ? 1 : 0);
            e10 = q;
            int k = POW5_INV_BITCOUNT + pow5bits(q) - 1;
            int i = -e2 + q + k;
            vr = mulShift(mv, POW5_INV_SPLIT, 2 * q, i);
            vp = mulShift(mv + 2, POW5_INV_SPLIT, 2 * q, i);
            vm = mulShift(mv - 1 - mmShift, POW5_INV_SPLIT, 2 * q, i);
            if (q <= 21) {
                if (mv % 5 == 0) {
                    vrIsTrailingZeros = multipleOfPowerOf5(mv, q);
                } else if (acceptBounds) {
                    vmIsTrailingZeros = multipleOfPowerOf5(mv - 1 - mmShift, q);
                } else if (multipleOfPowerOf5(mv + 2, q)) {
                    vp--;
                }
            }
        } else {
            int q = log10Pow5(-e2) - (-e2 > 1 ? 1 : 0);
            e10 = q + e2;
            int i = -e2 - q;
            int k = pow5bits(i) - POW5_BITCOUNT;
            int j = q - k;
            vr = mulShift(mv, POW5_SPLIT, 2 * i, j);
            vp = mulShift(mv + 2, POW5_SPLIT, 2 * i, j);
            vm = mulShift(mv - 1 - mmShift, POW5_SPLIT, 2 * i, j);
            if (q <= 1) {
                vrIsTrailingZeros = true;
                if (acceptBounds) {
                    vmIsTrailingZeros = mmShift == 1;
                } else {
                    vp--;
                }
            } else if (q < 63) {
                vrIsTrailingZeros = multipleOfPowerOf2(mv, q);
            }
        }
        int removed = 0;
        int lastRemovedDigit = 0;
        long output;
        if (vmIsTrailingZeros || vrIsTrailingZeros) {
            while (vp / 10 > vm / 10) {
                vmIsTrailingZeros &= vm % 10 == 0;
                vrIsTrailingZeros &= lastRemovedDigit == 0;
                lastRemovedDigit = (int) (vr % 10);
                vr /= 10;
                vp /= 10;
                vm /= 10;
                removed++;
            }
            if (vmIsTrailingZeros) {
                while (vm % 10 == 0) {
                    vrIsTrailingZeros &= lastRemovedDigit == 0;
                    lastRemovedDigit = (int) (vr % 10);
                    vr /= 10;
                    vp /= 10;
                    vm /= 10;
                    removed++;
                }
            }
            if (vrIsTrailingZeros && lastRemovedDigit == 5 && vr % 2 == 0) {
                lastRemovedDigit = 4; // exactly halfway: round to even
            }
            output = vr + ((vr == vm && (!acceptBounds || !vmIsTrailingZeros)) || lastRemovedDigit >= 5 ? 1 : 0);
        } else {
            boolean roundUp = false;
            if (vp / 100 > vm / 100) {
                roundUp = vr % 100 >= 50;
                vr /= 100;
                vp /= 100;
                vm /= 100;
                removed += 2;
            }
            while (vp / 10 > vm / 10) {
                roundUp = vr % 10 >= 5;
                vr /= 10;
                vp /= 10;
                vm /= 10;
                removed++;
            }
            output = vr + (vr == vm || roundUp ? 1 : 0);
        }
        int exp = e10 + removed;
        while (output % 10 == 0) {
            output /= 10;
            exp++;
        }
        digits = output;
        exponent = exp;
    }

    /** Appends {@code text} as a JSON string the way orjson writes it (UTF-8, escapes only what JSON requires). */
    static void appendJsonString(ByteSink out, String text) {
        out.put((byte) '"');
        for (int index = 0; index < text.length(); index++) {
            char c = text.charAt(index);
            if (c >= 0x20 && c < 0x80) {
                if (c == '"' || c == '\\') {
                    out.put((byte) '\\');
                }
                out.put((byte) c);
            } else if (c < 0x20) {
                switch (c) {
                    case '\b' -> out.put((byte) '\\').put((byte) 'b');
                    case '\f' -> out.put((byte) '\\').put((byte) 'f');
                    case '\n' -> out.put((byte) '\\').put((byte) 'n');
                    case '\r' -> out.put((byte) '\\').put((byte) 'r');
                    case '\t' -> out.put((byte) '\\').put((byte) 't');
                    default -> out.put((byte) '\\').put((byte) 'u').put((byte) '0').put((byte) '0')
                            .put((byte) HEX[c >> 4]).put((byte) HEX[c & 0xf]);
                }
            } else if (c < 0x800) {
                out.put((byte) (0xc0 | (c >> 6))).put((byte) (0x80 | (c & 0x3f)));
            } else if (Character.isHighSurrogate(c) && index + 1 < text.length()
                    && Character.isLowSurrogate(text.charAt(index + 1))) {
                int codePoint = Character.toCodePoint(c, text.charAt(++index));
                out.put((byte) (0xf0 | (codePoint >> 18))).put((byte) (0x80 | ((codePoint >> 12) & 0x3f)))
                        .put((byte) (0x80 | ((codePoint >> 6) & 0x3f))).put((byte) (0x80 | (codePoint & 0x3f)));
            } else {
                // A lone surrogate cannot come from validated UTF-8 or from the escapes the fast path accepts.
                out.put((byte) (0xe0 | (c >> 12))).put((byte) (0x80 | ((c >> 6) & 0x3f)))
                        .put((byte) (0x80 | (c & 0x3f)));
            }
        }
        out.put((byte) '"');
    }

    private static final char[] HEX = "0123456789abcdef".toCharArray();
}
