package h2ogbmpredictor;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/** A growable byte array: a response being written. */
final class ByteSink {
    private byte[] bytes;
    private int length;

    ByteSink(int capacity) {
        bytes = new byte[capacity];
    }

    int length() {
        return length;
    }

    int capacity() {
        return bytes.length;
    }

    byte[] array() {
        return bytes;
    }

    void clear() {
        length = 0;
    }

    /** The array, with room for {@code more} bytes after {@link #length}; write them, then {@link #setLength}. */
    byte[] reserve(int more) {
        ensure(more);
        return bytes;
    }

    void setLength(int length) {
        this.length = length;
    }

    private void ensure(int more) {
        if (length + more > bytes.length) {
            bytes = Arrays.copyOf(bytes, Math.max(bytes.length * 2, length + more));
        }
    }

    ByteSink put(byte value) {
        if (length == bytes.length) {
            ensure(1);
        }
        bytes[length++] = value;
        return this;
    }

    ByteSink put(byte[] values) {
        return put(values, 0, values.length);
    }

    ByteSink put(byte[] values, int offset, int count) {
        ensure(count);
        System.arraycopy(values, offset, bytes, length, count);
        length += count;
        return this;
    }

    String toLatin1String() {
        return new String(bytes, 0, length, StandardCharsets.ISO_8859_1);
    }
}
