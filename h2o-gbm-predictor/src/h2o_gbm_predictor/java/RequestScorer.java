package h2ogbmpredictor;

import hex.genmodel.easy.RowData;
import hex.genmodel.easy.exception.PredictException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * A whole /invocations request in one call: the body's bytes in, the response's bytes out, so Python crosses into
 * Java once per request and builds no per-cell objects.
 *
 * <p>This is a fast path, not a second implementation of the contract: it answers only requests that the Python
 * path (formats.py, then {@link BatchScorer#score}) would answer with 200, and writes exactly the bytes that path
 * writes. At the first thing it does not handle the same way for certain (any input error, and rarer valid input:
 * JSON integers of more than 18 digits, very deep JSON in ignored columns, non-finite outputs, a response larger
 * than the heap) it returns {@link #FALLBACK} and the caller runs the Python path, which words every error. Both
 * paths score rows through the same BatchScorer and EasyPredictModelWrapper.
 *
 * <p>The body is read from the direct buffer given to {@link #setInput} (a Python bytearray) and the response
 * written to the one given to {@link #setOutput}. Not thread-safe: one instance per serving thread.
 */
public final class RequestScorer {
    /** Request and response formats, as the Python side numbers them. */
    public static final int JSON = 0;

    public static final int JSON_LINES = 1;
    public static final int CSV = 2;

    /** Not answered here: run the Python path. */
    public static final int FALLBACK = -1;

    /** The response is ready but longer than the output buffer: see {@link #responseLength}. */
    public static final int OUTPUT_TOO_SMALL = -2;

    private static final int MAX_CSV_FIELD = 131072; // Python's csv.field_size_limit()
    /** The response buffer's usual size; one grown past KEPT_CAPACITY for a large response is dropped after it. */
    private static final int RESPONSE_CAPACITY = 1 << 16;

    private static final int KEPT_CAPACITY = 1 << 23;
    private static final int MAX_JSON_DEPTH = 64;
    private static final int MAX_INTEGER_DIGITS = 18;
    private static final double[] POWERS_OF_TEN = {
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
        1e20, 1e21, 1e22
    };
    private static final byte[] UNKNOWN_LEVELS_KEY =
            ",\"unknown_categorical_levels\":".getBytes(StandardCharsets.UTF_8);
    private static final byte[] JSON_START = "{\"predictions\":[".getBytes(StandardCharsets.UTF_8);
    private static final byte[] REGRESSION_PREFIX = "{\"value\":".getBytes(StandardCharsets.UTF_8);

    /** Thrown to give up on a request; preallocated, without a stack trace. */
    private static final class Fallback extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Fallback() {
            super(null, null, false, false);
        }
    }

    private static final Fallback GIVE_UP = new Fallback();

    // The model ---------------------------------------------------------------------------------------------------
    private final BatchScorer scorer;
    private final String[] featureNames;
    private final boolean[] numericFeature;
    private final int inputColumnCount;
    /** Known columns (input columns, then the target) as UTF-8, and the feature each one is (-1: none). */
    private final byte[][] knownColumns;

    private final int[] knownFeature;
    /** An open-addressing table of known column indexes + 1, by {@link #hash} of the name's bytes. */
    private final int[] knownSlots;

    private final int[] inputColumnFeature;
    private final boolean regression;
    private final int outputWidth;
    private final byte[] csvHeader;
    private final byte[][] csvLabels;
    private final byte[][] jsonRowPrefixes;
    private final byte[][] jsonProbabilityKeys;

    // Per request -------------------------------------------------------------------------------------------------
    private ByteBuffer input;
    private ByteBuffer output;
    private byte[] body = new byte[1 << 16];
    private int bodyLength;
    private int responseFormat;
    private ByteSink response = new ByteSink(RESPONSE_CAPACITY);
    private final ByteSink scratch = new ByteSink(256);
    private final Decimals decimals = new Decimals();
    private final double[] rowValues;
    private final RowData rowData = new RowData();
    private int rows;
    /** Per categorical feature, the level Strings met so far by their UTF-8 bytes (reused: hash computed once). */
    private final LevelCache[] levelCaches;

    /** The current row's feature cells: a byte range of {@link #cellBytes}, a String, a parsed double, or missing. */
    private static final byte MISSING = 0;

    private static final byte RANGE = 1;
    private static final byte TEXT = 2;
    private static final byte NUMBER = 3;
    private final byte[] cellKind;
    private final byte[][] cellBytes;
    private final int[] cellStart;
    private final int[] cellEnd;
    private final String[] cellText;
    private final double[] cellNumber;

    // CSV records: fields as byte ranges of fieldBytes
    private byte[][] fieldBytes = new byte[16][];
    private int[] fieldStart = new int[16];
    private int[] fieldEnd = new int[16];
    private int fieldCount;
    private int position;

    // JSON: the end of what is being read (the body, or one line of JSON Lines)
    private int limit;

    public RequestScorer(
            BatchScorer scorer,
            String[] inputColumns,
            String target,
            byte[] csvHeader,
            byte[][] csvLabels,
            byte[][] jsonRowPrefixes,
            byte[][] jsonProbabilityKeys) {
        this.scorer = scorer;
        this.featureNames = scorer.featureNames;
        this.numericFeature = scorer.numericFeature;
        this.inputColumnCount = inputColumns.length;
        this.outputWidth = scorer.outputWidth();
        this.regression = csvLabels.length == 0;
        this.csvHeader = csvHeader;
        this.csvLabels = csvLabels;
        this.jsonRowPrefixes = jsonRowPrefixes;
        this.jsonProbabilityKeys = jsonProbabilityKeys;
        this.rowValues = new double[outputWidth];
        int features = featureNames.length;
        this.cellKind = new byte[features];
        this.cellBytes = new byte[features][];
        this.cellStart = new int[features];
        this.cellEnd = new int[features];
        this.cellText = new String[features];
        this.cellNumber = new double[features];
        this.levelCaches = new LevelCache[features];
        for (int feature = 0; feature < features; feature++) {
            levelCaches[feature] = new LevelCache();
        }

        String[] known = new String[inputColumns.length + 1];
        System.arraycopy(inputColumns, 0, known, 0, inputColumns.length);
        known[inputColumns.length] = target;
        this.knownColumns = new byte[known.length][];
        this.knownFeature = new int[known.length];
        this.inputColumnFeature = new int[inputColumns.length];
        int slots = Integer.highestOneBit(known.length * 4 + 3) << 1;
        this.knownSlots = new int[slots];
        for (int column = 0; column < known.length; column++) {
            knownColumns[column] = known[column].getBytes(StandardCharsets.UTF_8);
            knownFeature[column] = -1;
            for (int feature = 0; feature < features; feature++) {
                if (featureNames[feature].equals(known[column])) {
                    knownFeature[column] = feature;
                }
            }
            if (column < inputColumns.length) {
                inputColumnFeature[column] = knownFeature[column];
            }
            byte[] name = knownColumns[column];
            if (knownColumn(name, 0, name.length) >= 0) {
                continue; // the target is also an input column: keep the first
            }
            int slot = hash(name, 0, name.length) & (slots - 1);
            while (knownSlots[slot] != 0) {
                slot = (slot + 1) & (slots - 1);
            }
            knownSlots[slot] = column + 1;
        }
    }

    public void setInput(ByteBuffer input) {
        this.input = input;
    }

    public void setOutput(ByteBuffer output) {
        this.output = output;
    }

    /** The length of the response the last {@link #handle} call wrote. */
    public int responseLength() {
        return response.length();
    }

    /** Copies the last response into the output buffer (after {@link #OUTPUT_TOO_SMALL} and a larger buffer). */
    public void copyResponse() {
        output.put(0, response.array(), 0, response.length());
    }

    /**
     * Scores the request of {@code length} bytes in the input buffer and writes its response to the output buffer.
     * Returns the response's length, {@link #FALLBACK} or {@link #OUTPUT_TOO_SMALL}.
     */
    public int handle(int length, int requestFormat, int responseFormat) throws PredictException {
        if (response.capacity() > KEPT_CAPACITY) {
            response = new ByteSink(RESPONSE_CAPACITY);
        }
        try {
            return respond(length, requestFormat, responseFormat);
        } catch (OutOfMemoryError error) {
            // A response too large for this JVM's heap (millions of tiny rows): the Python path answers it, as
            // it did before this class existed, with the Python heap.
            response = new ByteSink(RESPONSE_CAPACITY);
            return FALLBACK;
        }
    }

    private int respond(int length, int requestFormat, int responseFormat) throws PredictException {
        if (body.length < length) {
            body = new byte[Math.max(length, body.length * 2)];
        }
        input.get(0, body, 0, length);
        bodyLength = length;
        this.responseFormat = responseFormat;
        response.clear();
        rows = 0;
        try {
            if (isBlank(0, length) || !isValidUtf8()) {
                return FALLBACK;
            }
            switch (responseFormat) {
                case JSON -> response.put(JSON_START);
                case CSV -> response.put(csvHeader);
                default -> {}
            }
            switch (requestFormat) {
                case CSV -> csv();
                case JSON -> json();
                default -> jsonLines();
            }
        } catch (Fallback fallback) {
            return FALLBACK;
        }
        if (rows == 0) {
            return FALLBACK;
        }
        if (responseFormat == JSON) {
            response.put((byte) ']').put((byte) '}');
        }
        if (response.length() > output.capacity()) {
            return OUTPUT_TOO_SMALL;
        }
        copyResponse();
        return response.length();
    }

    // Input checks ----------------------------------------------------------------------------------------------------

    /** Python's bytes.strip() would leave nothing. */
    private boolean isBlank(int from, int to) {
        for (int index = from; index < to; index++) {
            byte b = body[index];
            if (b != ' ' && b != '\t' && b != '\n' && b != '\r' && b != 0x0b && b != 0x0c) {
                return false;
            }
        }
        return true;
    }

    /** Strict UTF-8 as Python and orjson read it: no overlong forms, no surrogates, nothing above U+10FFFF. */
    private boolean isValidUtf8() {
        int index = 0;
        int length = bodyLength;
        byte[] bytes = body;
        while (index < length) {
            int b = bytes[index];
            if (b >= 0) {
                index++;
                continue;
            }
            b &= 0xff;
            int continuation;
            int low = 0x80;
            int high = 0xbf;
            if (b >= 0xc2 && b <= 0xdf) {
                continuation = 1;
            } else if (b >= 0xe0 && b <= 0xef) {
                continuation = 2;
                if (b == 0xe0) {
                    low = 0xa0;
                } else if (b == 0xed) {
                    high = 0x9f;
                }
            } else if (b >= 0xf0 && b <= 0xf4) {
                continuation = 3;
                if (b == 0xf0) {
                    low = 0x90;
                } else if (b == 0xf4) {
                    high = 0x8f;
                }
            } else {
                return false;
            }
            if (index + continuation >= length) {
                return false;
            }
            for (int next = 1; next <= continuation; next++) {
                int c = bytes[index + next] & 0xff;
                if (next == 1 ? c < low || c > high : c < 0x80 || c > 0xbf) {
                    return false;
                }
            }
            index += continuation + 1;
        }
        return true;
    }

    // Known columns ---------------------------------------------------------------------------------------------------

    private static int hash(byte[] bytes, int from, int to) {
        int hash = 0;
        for (int index = from; index < to; index++) {
            hash = 31 * hash + bytes[index];
        }
        return hash ^ (hash >>> 16);
    }

    /** The index of the known column named by bytes[from, to), or -1. */
    private int knownColumn(byte[] bytes, int from, int to) {
        int mask = knownSlots.length - 1;
        int length = to - from;
        for (int slot = hash(bytes, from, to) & mask; knownSlots[slot] != 0; slot = (slot + 1) & mask) {
            byte[] name = knownColumns[knownSlots[slot] - 1];
            if (name.length == length && java.util.Arrays.equals(name, 0, length, bytes, from, to)) {
                return knownSlots[slot] - 1;
            }
        }
        return -1;
    }

    // CSV (Python's csv.reader, excel dialect, strict, over io.StringIO lines) --------------------------------------

    private void csv() throws PredictException {
        position = 0;
        int[] positionFeature = null;
        int expectedFields = 0;
        while (readRecord()) {
            if (fieldCount == 0) {
                continue; // a blank line: csv.reader gives [], which the Python path skips
            }
            if (positionFeature == null) {
                boolean header = false;
                for (int field = 0; field < fieldCount && !header; field++) {
                    header = knownColumn(fieldBytes[field], fieldStart[field], fieldEnd[field]) >= 0;
                }
                if (header) {
                    positionFeature = new int[fieldCount];
                    boolean[] seen = new boolean[knownColumns.length];
                    for (int field = 0; field < fieldCount; field++) {
                        int column = knownColumn(fieldBytes[field], fieldStart[field], fieldEnd[field]);
                        if (column < 0 || seen[column]) {
                            throw GIVE_UP; // unknown or duplicate column
                        }
                        seen[column] = true;
                        positionFeature[field] = knownFeature[column];
                    }
                    expectedFields = fieldCount;
                    continue;
                }
                positionFeature = inputColumnFeature;
                expectedFields = inputColumnCount;
            }
            if (fieldCount != expectedFields) {
                throw GIVE_UP;
            }
            clearCells();
            for (int field = 0; field < fieldCount; field++) {
                int feature = positionFeature[field];
                if (feature >= 0) {
                    cellKind[feature] = RANGE;
                    cellBytes[feature] = fieldBytes[field];
                    cellStart[feature] = fieldStart[field];
                    cellEnd[feature] = fieldEnd[field];
                }
            }
            scoreRow();
        }
    }

    /**
     * Reads the next record into the field arrays; false at the end of the body. The states of CPython's reader
     * (Modules/_csv.c) as straight loops: a record ends at a newline outside quotes or at the end; a quoted field may
     * span lines; after a closing quote only a comma, a newline or the end may follow; after a CR only CRs and LFs
     * until the LF; a record with no character before its newline is [] (which the Python path skips).
     */
    private boolean readRecord() {
        if (position >= bodyLength) {
            return false;
        }
        byte[] bytes = body;
        int length = bodyLength;
        int index = position;
        fieldCount = 0;
        if (bytes[index] == '\n' || bytes[index] == '\r') {
            position = endOfRecord(index);
            return true;
        }
        while (true) { // at the start of a field
            if (index >= length) {
                saveField(bytes, index, index); // "a," then the end: an empty last field
                break;
            }
            if (bytes[index] == '"') {
                int start = index + 1;
                int quote = start;
                boolean doubledQuotes = false;
                while (true) {
                    while (quote < length && bytes[quote] != '"') {
                        quote++;
                    }
                    if (quote >= length) {
                        throw GIVE_UP; // "unexpected end of data"
                    }
                    if (quote + 1 < length && bytes[quote + 1] == '"') {
                        doubledQuotes = true;
                        quote += 2;
                        continue;
                    }
                    break;
                }
                saveQuotedField(start, quote, doubledQuotes);
                index = quote + 1;
                if (index >= length) {
                    break;
                }
                byte next = bytes[index];
                if (next == ',') {
                    index++;
                    continue;
                }
                if (next != '\n' && next != '\r') {
                    throw GIVE_UP; // "',' expected after '\"'"
                }
                index = endOfRecord(index);
                break;
            }
            int start = index;
            byte c = 0;
            while (index < length && (c = bytes[index]) != ',' && c != '\n' && c != '\r') {
                index++;
            }
            saveField(bytes, start, index);
            if (index >= length) {
                break;
            }
            if (c == ',') {
                index++;
                continue;
            }
            index = endOfRecord(index);
            break;
        }
        position = index;
        return true;
    }

    /** From a CR or LF ending a record: past the LF ending its line, allowing only CRs before it. */
    private int endOfRecord(int index) {
        while (index < bodyLength) {
            byte c = body[index++];
            if (c == '\n') {
                return index;
            }
            if (c != '\r') {
                throw GIVE_UP; // "new-line character seen in unquoted field"
            }
        }
        return index;
    }

    private void saveField(byte[] bytes, int from, int to) {
        if (to - from > MAX_CSV_FIELD) {
            throw GIVE_UP;
        }
        if (fieldCount == fieldStart.length) {
            fieldBytes = java.util.Arrays.copyOf(fieldBytes, fieldCount * 2);
            fieldStart = java.util.Arrays.copyOf(fieldStart, fieldCount * 2);
            fieldEnd = java.util.Arrays.copyOf(fieldEnd, fieldCount * 2);
        }
        fieldBytes[fieldCount] = bytes;
        fieldStart[fieldCount] = from;
        fieldEnd[fieldCount] = to;
        fieldCount++;
    }

    private void saveQuotedField(int from, int to, boolean doubledQuotes) {
        if (!doubledQuotes) {
            saveField(body, from, to);
            return;
        }
        byte[] unquoted = new byte[to - from];
        int length = 0;
        for (int index = from; index < to; index++) {
            unquoted[length++] = body[index];
            if (body[index] == '"') {
                index++; // "" inside quotes is one "
            }
        }
        saveField(unquoted, 0, length);
    }

    // JSON (orjson's strict RFC 8259, read as formats.py reads records) ----------------------------------------------

    private void json() throws PredictException {
        position = 0;
        limit = bodyLength;
        skipWhitespace();
        if (position >= limit) {
            throw GIVE_UP;
        }
        byte first = body[position];
        if (first == '[') {
            records();
        } else if (first == '{') {
            if (!instances()) {
                record();
            }
        } else {
            throw GIVE_UP; // a scalar document
        }
        skipWhitespace();
        if (position != limit) {
            throw GIVE_UP;
        }
    }

    /** {"instances": [...]} as the whole document: scores its records and returns true; else moves nothing. */
    private boolean instances() throws PredictException {
        int start = position;
        position++;
        skipWhitespace();
        if (position >= limit || body[position] != '"') {
            position = start;
            return false;
        }
        String key = string();
        if (!key.equals("instances")) {
            position = start;
            return false;
        }
        skipWhitespace();
        expect((byte) ':');
        skipWhitespace();
        if (position >= limit || body[position] != '[') {
            throw GIVE_UP; // "instances" must be a list (or another key follows: a record the Python path reads)
        }
        records();
        skipWhitespace();
        expect((byte) '}');
        return true;
    }

    private void jsonLines() throws PredictException {
        int lineStart = 0;
        while (lineStart < bodyLength) {
            int lineEnd = lineStart;
            while (lineEnd < bodyLength && body[lineEnd] != '\n' && body[lineEnd] != '\r') {
                lineEnd++;
            }
            boolean crlf = lineEnd + 1 < bodyLength && body[lineEnd] == '\r' && body[lineEnd + 1] == '\n';
            int next = lineEnd + (crlf ? 2 : 1);
            if (!isBlank(lineStart, lineEnd)) {
                position = lineStart;
                limit = lineEnd;
                skipWhitespace();
                record();
                skipWhitespace();
                if (position != limit) {
                    throw GIVE_UP;
                }
            }
            lineStart = next;
        }
    }

    /** A non-empty array of records, each scored. */
    private void records() throws PredictException {
        position++;
        skipWhitespace();
        if (position < limit && body[position] == ']') {
            throw GIVE_UP; // no rows to score
        }
        do {
            record();
        } while (anotherElement((byte) ']'));
    }

    /** One record, an object or a list of values in input column order, scored. */
    private void record() throws PredictException {
        if (position >= limit) {
            throw GIVE_UP;
        }
        clearCells();
        if (body[position] == '{') {
            position++;
            skipWhitespace();
            if (position < limit && body[position] == '}') {
                position++;
            } else {
                do {
                    int column = key();
                    skipWhitespace();
                    expect((byte) ':');
                    skipWhitespace();
                    valueFor(knownFeature[column]); // a repeated key: the last one wins, as in orjson's dict
                } while (anotherElement((byte) '}'));
            }
        } else if (body[position] == '[') {
            position++;
            skipWhitespace();
            int column = 0;
            if (position < limit && body[position] == ']') {
                throw GIVE_UP; // no values: the wrong count
            }
            do {
                if (column >= inputColumnCount) {
                    throw GIVE_UP;
                }
                valueFor(inputColumnFeature[column++]);
            } while (anotherElement((byte) ']'));
            if (column != inputColumnCount) {
                throw GIVE_UP;
            }
        } else {
            throw GIVE_UP; // a record must be an object or a list
        }
        scoreRow();
    }

    /** An object key that must be a known column; returns the column. */
    private int key() {
        if (position >= limit || body[position] != '"') {
            throw GIVE_UP;
        }
        int start = position + 1;
        int end = plainStringEnd(start);
        int column;
        if (end >= 0) {
            column = knownColumn(body, start, end);
            position = end + 1;
        } else {
            byte[] name = string().getBytes(StandardCharsets.UTF_8);
            column = knownColumn(name, 0, name.length);
        }
        if (column < 0) {
            throw GIVE_UP; // unknown column
        }
        return column;
    }

    /** A feature's value: a string, null, or a number (Python's repr of it is the cell). */
    private void cell(int feature) {
        if (position >= limit) {
            throw GIVE_UP;
        }
        byte c = body[position];
        if (c == '"') {
            int start = position + 1;
            int end = plainStringEnd(start);
            if (end >= 0) {
                cellKind[feature] = RANGE;
                cellBytes[feature] = body;
                cellStart[feature] = start;
                cellEnd[feature] = end;
                position = end + 1;
            } else {
                cellKind[feature] = TEXT;
                cellText[feature] = string();
            }
        } else if (c == 'n') {
            literal("null");
            cellKind[feature] = MISSING;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            int start = position;
            boolean integer = jsonNumber();
            if (integer) {
                if (position - start - (c == '-' ? 1 : 0) > MAX_INTEGER_DIGITS) {
                    throw GIVE_UP; // orjson reads a longer integer as a float, or refuses it
                }
                if (position - start == 2 && c == '-' && body[start + 1] == '0') {
                    cellKind[feature] = TEXT; // repr(int("-0")) is "0"
                    cellText[feature] = "0";
                } else {
                    cellKind[feature] = RANGE;
                    cellBytes[feature] = body;
                    cellStart[feature] = start;
                    cellEnd[feature] = position;
                }
            } else {
                double value = parseNumber(body, start, position);
                if (Double.isInfinite(value)) {
                    throw GIVE_UP; // orjson: "number is infinity when parsed as double"
                }
                if (numericFeature[feature]) {
                    cellKind[feature] = NUMBER;
                    cellNumber[feature] = value;
                } else {
                    cellKind[feature] = TEXT;
                    cellText[feature] = decimals.repr(value);
                }
            }
        } else {
            throw GIVE_UP; // true, false, an object or a list: not a cell
        }
    }

    /** The value at the cursor into its feature's cell, or skipped (checked) when no feature takes it. */
    private void valueFor(int feature) {
        if (feature >= 0) {
            cell(feature);
        } else {
            skipValue(0);
        }
    }

    /** After an array's or object's element: past its comma (true: another follows) or past {@code close}. */
    private boolean anotherElement(byte close) {
        skipWhitespace();
        if (position < limit && body[position] == ',') {
            position++;
            skipWhitespace();
            return true;
        }
        expect(close);
        return false;
    }

    /** Skips any JSON value, checking it as orjson would (what it refuses, or might, gives up). */
    private void skipValue(int depth) {
        if (position >= limit || depth > MAX_JSON_DEPTH) {
            throw GIVE_UP;
        }
        byte c = body[position];
        switch (c) {
            case '"' -> string();
            case 't' -> literal("true");
            case 'f' -> literal("false");
            case 'n' -> literal("null");
            case '{', '[' -> {
                byte close = c == '{' ? (byte) '}' : (byte) ']';
                position++;
                skipWhitespace();
                if (position < limit && body[position] == close) {
                    position++;
                    return;
                }
                do {
                    if (c == '{') {
                        if (position >= limit || body[position] != '"') {
                            throw GIVE_UP;
                        }
                        string();
                        skipWhitespace();
                        expect((byte) ':');
                        skipWhitespace();
                    }
                    skipValue(depth + 1);
                } while (anotherElement(close));
            }
            default -> {
                int start = position;
                if (jsonNumber()) {
                    if (position - start - (c == '-' ? 1 : 0) > MAX_INTEGER_DIGITS) {
                        throw GIVE_UP;
                    }
                } else if (Double.isInfinite(parseNumber(body, start, position))) {
                    throw GIVE_UP;
                }
            }
        }
    }

    /** Reads -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)? at the position; true if it is an integer. */
    private boolean jsonNumber() {
        if (body[position] == '-') {
            position++;
        }
        if (position >= limit) {
            throw GIVE_UP;
        }
        if (body[position] == '0') {
            position++;
        } else if (!digitsAt()) {
            throw GIVE_UP;
        }
        boolean integer = true;
        if (position < limit && body[position] == '.') {
            position++;
            integer = false;
            if (!digitsAt()) {
                throw GIVE_UP;
            }
        }
        if (position < limit && (body[position] == 'e' || body[position] == 'E')) {
            position++;
            integer = false;
            if (position < limit && (body[position] == '+' || body[position] == '-')) {
                position++;
            }
            if (!digitsAt()) {
                throw GIVE_UP;
            }
        }
        return integer;
    }

    private boolean digitsAt() {
        int start = position;
        while (position < limit && body[position] >= '0' && body[position] <= '9') {
            position++;
        }
        return position > start;
    }

    private void literal(String word) {
        int length = word.length();
        if (position + length > limit) {
            throw GIVE_UP;
        }
        for (int index = 0; index < length; index++) {
            if (body[position + index] != word.charAt(index)) {
                throw GIVE_UP;
            }
        }
        position += length;
    }

    /** The end (closing quote) of a string starting at {@code start} with no escapes and no control bytes, or -1. */
    private int plainStringEnd(int start) {
        for (int index = start; index < limit; index++) {
            byte b = body[index];
            if (b == '"') {
                return index;
            }
            if (b == '\\' || (b >= 0 && b < 0x20)) {
                return -1;
            }
        }
        return -1;
    }

    /** Reads a string at the position (its opening quote) with its escapes. */
    private String string() {
        StringBuilder text = new StringBuilder();
        int index = position + 1;
        int runStart = index;
        while (true) {
            if (index >= limit) {
                throw GIVE_UP;
            }
            byte b = body[index];
            if (b == '"' || b == '\\') {
                text.append(new String(body, runStart, index - runStart, StandardCharsets.UTF_8));
                if (b == '"') {
                    position = index + 1;
                    return text.toString();
                }
                if (index + 1 >= limit) {
                    throw GIVE_UP;
                }
                byte escaped = body[index + 1];
                index += 2;
                switch (escaped) {
                    case '"' -> text.append('"');
                    case '\\' -> text.append('\\');
                    case '/' -> text.append('/');
                    case 'b' -> text.append('\b');
                    case 'f' -> text.append('\f');
                    case 'n' -> text.append('\n');
                    case 'r' -> text.append('\r');
                    case 't' -> text.append('\t');
                    case 'u' -> {
                        char code = hexEscape(index);
                        index += 4;
                        if (Character.isSurrogate(code)) {
                            // orjson takes a high surrogate followed by an escaped low one, and refuses the rest
                            if (!Character.isHighSurrogate(code) || index + 6 > limit || body[index] != '\\'
                                    || body[index + 1] != 'u') {
                                throw GIVE_UP;
                            }
                            char low = hexEscape(index + 2);
                            if (!Character.isLowSurrogate(low)) {
                                throw GIVE_UP;
                            }
                            text.append(code);
                            code = low;
                            index += 6;
                        }
                        text.append(code);
                    }
                    default -> throw GIVE_UP;
                }
                runStart = index;
            } else if (b >= 0 && b < 0x20) {
                throw GIVE_UP; // a raw control character
            } else {
                index++;
            }
        }
    }

    /** The four hex digits at {@code index} (after a backslash-u). */
    private char hexEscape(int index) {
        if (index + 4 > limit) {
            throw GIVE_UP;
        }
        int code = 0;
        for (int digit = 0; digit < 4; digit++) {
            int value = Character.digit(body[index + digit], 16);
            if (value < 0) {
                throw GIVE_UP;
            }
            code = code * 16 + value;
        }
        return (char) code;
    }

    private void skipWhitespace() {
        while (position < limit) {
            byte b = body[position];
            if (b != ' ' && b != '\t' && b != '\n' && b != '\r') {
                return;
            }
            position++;
        }
    }

    private void expect(byte c) {
        if (position >= limit || body[position] != c) {
            throw GIVE_UP;
        }
        position++;
    }

    // Scoring ---------------------------------------------------------------------------------------------------------

    private void clearCells() {
        java.util.Arrays.fill(cellKind, MISSING);
    }

    /** Scores the current cells (as BatchScorer.toRowData reads them) and writes the row's response. */
    private void scoreRow() throws PredictException {
        RowData data = rowData;
        data.clear();
        for (int feature = 0; feature < featureNames.length; feature++) {
            switch (cellKind[feature]) {
                case RANGE -> rangeCell(data, feature, cellBytes[feature], cellStart[feature], cellEnd[feature]);
                case TEXT -> textCell(data, feature, cellText[feature]);
                case NUMBER -> data.put(featureNames[feature], cellNumber[feature]);
                default -> {}
            }
        }
        scorer.clearUnknownLevels();
        scorer.predictRow(data, 0, rowValues, 0);
        for (double value : rowValues) {
            if (!Double.isFinite(value)) {
                throw GIVE_UP; // the Python encoders write these (NaN, null)
            }
        }
        if (responseFormat == CSV) {
            csvRow();
        } else {
            if (responseFormat == JSON && rows > 0) {
                response.put((byte) ',');
            }
            jsonRow(response);
            if (responseFormat == JSON_LINES) {
                response.put((byte) '\n');
            }
        }
        rows++;
    }

    private void rangeCell(RowData data, int feature, byte[] bytes, int from, int to) {
        if (from == to) {
            return;
        }
        boolean ascii = true;
        for (int index = from; index < to; index++) {
            byte b = bytes[index];
            if (b == 0x1f) {
                throw GIVE_UP; // the Python path refuses U+001F in values
            }
            ascii &= b >= 0;
        }
        if (!numericFeature[feature]) {
            data.put(featureNames[feature], levelCaches[feature].level(bytes, from, to));
            return;
        }
        if (!ascii) {
            textCell(data, feature, new String(bytes, from, to - from, StandardCharsets.UTF_8));
            return;
        }
        // String.strip() on ASCII: Character.isWhitespace is true for 9-13, 28-31 and 32
        while (from < to && isAsciiWhitespace(bytes[from])) {
            from++;
        }
        while (to > from && isAsciiWhitespace(bytes[to - 1])) {
            to--;
        }
        if (from == to || (to - from == 2 && bytes[from] == 'N' && bytes[from + 1] == 'A')) {
            return;
        }
        data.put(featureNames[feature], parseNumber(bytes, from, to));
    }

    private static boolean isAsciiWhitespace(byte b) {
        return b == ' ' || (b >= 9 && b <= 13) || (b >= 28 && b <= 31);
    }

    /** As BatchScorer.toRowData reads one cell; an invalid number gives up (the Python path words the error). */
    private void textCell(RowData data, int feature, String cell) {
        if (cell.isEmpty()) {
            return;
        }
        if (cell.indexOf('\u001f') >= 0) {
            throw GIVE_UP;
        }
        if (!numericFeature[feature]) {
            data.put(featureNames[feature], cell);
            return;
        }
        String number = cell.strip();
        if (number.isEmpty() || number.equals("NA")) {
            return;
        }
        if (!BatchScorer.isNumber(number)) {
            throw GIVE_UP;
        }
        data.put(featureNames[feature], Double.parseDouble(number));
    }

    /**
     * Double.parseDouble of bytes[from, to) when they match BatchScorer.isNumber, else gives up. Short decimals are
     * computed exactly (an integer of at most 2^53 times or divided by an exact power of ten: one rounding).
     */
    private double parseNumber(byte[] bytes, int from, int to) {
        int index = from;
        boolean negative = false;
        if (bytes[index] == '+' || bytes[index] == '-') {
            negative = bytes[index] == '-';
            index++;
        }
        long mantissa = 0;
        int significant = 0;
        int scale = 0;
        boolean exact = true;
        int digits = 0;
        for (; index < to && bytes[index] >= '0' && bytes[index] <= '9'; index++, digits++) {
            int digit = bytes[index] - '0';
            if (significant < 18) {
                if (mantissa != 0 || digit != 0) {
                    mantissa = mantissa * 10 + digit;
                    significant++;
                }
            } else {
                exact = false;
            }
        }
        if (index < to && bytes[index] == '.') {
            index++;
            for (; index < to && bytes[index] >= '0' && bytes[index] <= '9'; index++, digits++) {
                int digit = bytes[index] - '0';
                if (significant < 18) {
                    if (mantissa != 0 || digit != 0) {
                        mantissa = mantissa * 10 + digit;
                        significant++;
                    }
                    scale--;
                } else {
                    exact = false;
                }
            }
        }
        if (digits == 0) {
            throw GIVE_UP;
        }
        int exponent = 0;
        if (index < to && (bytes[index] == 'e' || bytes[index] == 'E')) {
            index++;
            boolean negativeExponent = false;
            if (index < to && (bytes[index] == '+' || bytes[index] == '-')) {
                negativeExponent = bytes[index] == '-';
                index++;
            }
            int exponentDigits = 0;
            for (; index < to && bytes[index] >= '0' && bytes[index] <= '9'; index++, exponentDigits++) {
                exponent = Math.min(exponent * 10 + bytes[index] - '0', 100_000);
            }
            if (exponentDigits == 0) {
                throw GIVE_UP;
            }
            if (negativeExponent) {
                exponent = -exponent;
            }
        }
        if (index != to) {
            throw GIVE_UP;
        }
        int power = exponent + scale;
        if (exact && mantissa <= (1L << 53) && power >= -22 && power <= 22) {
            double value = mantissa;
            value = power >= 0 ? value * POWERS_OF_TEN[power] : value / POWERS_OF_TEN[-power];
            return negative ? -value : value;
        }
        return Double.parseDouble(new String(bytes, from, to - from, StandardCharsets.ISO_8859_1));
    }

    // Output (the bytes formats.py's ResponseEncoder writes) ---------------------------------------------------------

    private void csvRow() {
        if (regression) {
            decimals.appendRepr(response, rowValues[0]);
        } else {
            response.put(csvLabels[(int) rowValues[0]]);
            for (int column = 1; column < outputWidth; column++) {
                response.put((byte) ',');
                decimals.appendRepr(response, rowValues[column]);
            }
        }
        response.put((byte) ',');
        int unknown = scorer.unknownLevelCount();
        if (unknown > 0) {
            scratch.clear();
            unknownLevelsObject(scratch, unknown);
            response.put((byte) '"');
            byte[] json = scratch.array();
            for (int index = 0; index < scratch.length(); index++) {
                if (json[index] == '"') {
                    response.put((byte) '"');
                }
                response.put(json[index]);
            }
            response.put((byte) '"');
        }
        response.put((byte) '\n');
    }

    private void jsonRow(ByteSink out) {
        if (regression) {
            out.put(REGRESSION_PREFIX);
            decimals.appendJson(out, rowValues[0]);
        } else {
            out.put(jsonRowPrefixes[(int) rowValues[0]]);
            for (int column = 1; column < outputWidth; column++) {
                if (column > 1) {
                    out.put((byte) ',');
                }
                out.put(jsonProbabilityKeys[column - 1]);
                decimals.appendJson(out, rowValues[column]);
            }
            out.put((byte) '}');
        }
        int unknown = scorer.unknownLevelCount();
        if (unknown > 0) {
            out.put(UNKNOWN_LEVELS_KEY);
            unknownLevelsObject(out, unknown);
        }
        out.put((byte) '}');
    }

    /** {"column":"level",...} as orjson writes the dict the Python path builds. */
    private void unknownLevelsObject(ByteSink out, int count) {
        out.put((byte) '{');
        for (int index = 0; index < count; index++) {
            if (index > 0) {
                out.put((byte) ',');
            }
            Decimals.appendJsonString(out, scorer.unknownLevelColumn(index));
            out.put((byte) ':');
            Decimals.appendJsonString(out, scorer.unknownLevelValue(index));
        }
        out.put((byte) '}');
    }

    /** A small table of level Strings by their bytes; stops adding at 64 levels (clients choose the values). */
    private static final class LevelCache {
        private static final int SLOTS = 128;
        private static final int MAX_LEVELS = 64;
        private final byte[][] keys = new byte[SLOTS][];
        private final String[] levels = new String[SLOTS];
        private int size;

        String level(byte[] bytes, int from, int to) {
            int slot = hash(bytes, from, to) & (SLOTS - 1);
            for (byte[] key = keys[slot]; key != null; key = keys[slot]) {
                if (java.util.Arrays.equals(key, 0, key.length, bytes, from, to)) {
                    return levels[slot];
                }
                slot = (slot + 1) & (SLOTS - 1);
            }
            String level = new String(bytes, from, to - from, StandardCharsets.UTF_8);
            if (size < MAX_LEVELS) {
                keys[slot] = java.util.Arrays.copyOfRange(bytes, from, to);
                levels[slot] = level;
                size++;
            }
            return level;
        }
    }
}
