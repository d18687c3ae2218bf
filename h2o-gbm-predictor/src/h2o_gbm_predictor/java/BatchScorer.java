package h2ogbmpredictor;

import hex.ModelCategory;
import hex.genmodel.MojoModel;
import hex.genmodel.easy.EasyPredictModelWrapper;
import hex.genmodel.easy.RowData;
import hex.genmodel.easy.exception.PredictException;
import hex.genmodel.easy.prediction.BinomialModelPrediction;
import hex.genmodel.easy.prediction.MultinomialModelPrediction;
import hex.genmodel.easy.prediction.RegressionModelPrediction;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * Scores a whole batch of rows per call, so Python crosses into Java once per request instead of once per row.
 *
 * <p>Cells arrive as one string, row after row in the order of the feature names given to the constructor, each
 * cell followed by the separator U+001F (one Java string crosses from Python far faster than an array of them);
 * an empty cell is a missing value. Each output row is {labelIndex, p(class 0), p(class 1), ...} for classifiers
 * (labelIndex uses the model's own threshold, as EasyPredictModelWrapper does) and {value} for regression.
 * Not thread-safe: one instance per serving thread. {@link RequestScorer} scores with the same instance, through
 * {@link #toRowData} and {@link #predictRow}, so both paths convert and score a row the same way.
 */
public final class BatchScorer {
    private static final char SEPARATOR = '\u001f';

    private final EasyPredictModelWrapper model;
    private final ModelCategory category;
    final String[] featureNames;
    final boolean[] numericFeature;
    private final int outputWidth;
    private final List<Integer> unknownLevelRows = new ArrayList<>();
    private final List<String> unknownLevelColumns = new ArrayList<>();
    private final List<String> unknownLevelValues = new ArrayList<>();
    private int currentRow;

    /** A cell that cannot be scored: the caller reports its 0-based row and its column. */
    public static final class InvalidCellException extends Exception {
        public final int row;
        public final String column;

        InvalidCellException(int row, String column, String message) {
            super(message);
            this.row = row;
            this.column = column;
        }
    }

    /** What one call returns: the flat output rows and the unknown categorical levels met, as parallel lists. */
    public static final class Batch {
        public final double[] values;
        public final int[] unknownLevelRows;
        public final String[] unknownLevelColumns;
        public final String[] unknownLevelValues;

        Batch(double[] values, int[] rows, String[] columns, String[] levels) {
            this.values = values;
            this.unknownLevelRows = rows;
            this.unknownLevelColumns = columns;
            this.unknownLevelValues = levels;
        }
    }

    public BatchScorer(String mojoPath, String[] featureNames, boolean[] numericFeature) throws IOException {
        EasyPredictModelWrapper.Config config = new EasyPredictModelWrapper.Config()
                .setModel(MojoModel.load(mojoPath))
                .setConvertUnknownCategoricalLevelsToNa(true)
                .setErrorConsumer(new EasyPredictModelWrapper.ErrorConsumer() {
                    @Override
                    public void dataTransformError(String column, Object value, String message) {}

                    @Override
                    public void unseenCategorical(String column, Object value, String message) {
                        unknownLevelRows.add(currentRow);
                        unknownLevelColumns.add(column);
                        unknownLevelValues.add(String.valueOf(value));
                    }
                });
        this.model = new EasyPredictModelWrapper(config);
        this.category = model.getModelCategory();
        this.featureNames = featureNames.clone();
        this.numericFeature = numericFeature.clone();
        switch (category) {
            case Binomial, Multinomial -> this.outputWidth = 1 + model.getResponseDomainValues().length;
            case Regression -> this.outputWidth = 1;
            default -> throw new IllegalArgumentException("unsupported model category " + category);
        }
    }

    public int outputWidth() {
        return outputWidth;
    }

    public Batch score(String cells, int rowCount) throws InvalidCellException, PredictException {
        String[] rowCells = new String[featureNames.length];
        int position = 0;
        double[] values = new double[rowCount * outputWidth];
        clearUnknownLevels();
        for (int row = 0; row < rowCount; row++) {
            for (int column = 0; column < rowCells.length; column++) {
                int end = cells.indexOf(SEPARATOR, position);
                if (end < 0) {
                    throw new IllegalArgumentException("fewer cells than " + rowCount + " rows need");
                }
                rowCells[column] = cells.substring(position, end);
                position = end + 1;
            }
            predictRow(toRowData(rowCells, row), row, values, row * outputWidth);
        }
        return new Batch(
                values,
                unknownLevelRows.stream().mapToInt(Integer::intValue).toArray(),
                unknownLevelColumns.toArray(new String[0]),
                unknownLevelValues.toArray(new String[0]));
    }

    /** Scores one row into values[offset, offset + outputWidth); unknown levels met are recorded under {@code row}. */
    void predictRow(RowData data, int row, double[] values, int offset) throws PredictException {
        currentRow = row;
        switch (category) {
            case Binomial -> {
                BinomialModelPrediction prediction = model.predictBinomial(data);
                values[offset] = prediction.labelIndex;
                System.arraycopy(prediction.classProbabilities, 0, values, offset + 1, outputWidth - 1);
            }
            case Multinomial -> {
                MultinomialModelPrediction prediction = model.predictMultinomial(data);
                values[offset] = prediction.labelIndex;
                System.arraycopy(prediction.classProbabilities, 0, values, offset + 1, outputWidth - 1);
            }
            default -> {
                RegressionModelPrediction prediction = model.predictRegression(data);
                values[offset] = prediction.value;
            }
        }
    }

    void clearUnknownLevels() {
        unknownLevelRows.clear();
        unknownLevelColumns.clear();
        unknownLevelValues.clear();
    }

    int unknownLevelCount() {
        return unknownLevelRows.size();
    }

    String unknownLevelColumn(int index) {
        return unknownLevelColumns.get(index);
    }

    String unknownLevelValue(int index) {
        return unknownLevelValues.get(index);
    }

    /** One row's cells (features in order; empty = missing) as the wrapper's input; a bad number throws. */
    RowData toRowData(String[] cells, int row) throws InvalidCellException {
        RowData data = new RowData();
        for (int column = 0; column < featureNames.length; column++) {
            String cell = cells[column];
            if (cell.isEmpty()) {
                continue;
            }
            if (!numericFeature[column]) {
                data.put(featureNames[column], cell);
                continue;
            }
            String number = cell.strip();
            if (number.isEmpty() || number.equals("NA")) {
                continue;
            }
            if (!isNumber(number)) {
                throw new InvalidCellException(
                        row, featureNames[column], "column " + featureNames[column] + " expects a number, got '" + cell + "'");
            }
            data.put(featureNames[column], Double.parseDouble(number));
        }
        return data;
    }

    /**
     * A decimal number as written in CSV or JSON, [+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)? with ASCII digits: stricter
     * than Double.parseDouble, which also takes "1d", "0x1p3" and "Infinity".
     */
    static boolean isNumber(String text) {
        int length = text.length();
        int position = 0;
        if (position < length && (text.charAt(position) == '+' || text.charAt(position) == '-')) {
            position++;
        }
        int integerDigits = 0;
        while (position < length && isDigit(text.charAt(position))) {
            position++;
            integerDigits++;
        }
        int fractionDigits = 0;
        if (position < length && text.charAt(position) == '.') {
            position++;
            while (position < length && isDigit(text.charAt(position))) {
                position++;
                fractionDigits++;
            }
        }
        if (integerDigits == 0 && fractionDigits == 0) {
            return false;
        }
        if (position < length && (text.charAt(position) == 'e' || text.charAt(position) == 'E')) {
            position++;
            if (position < length && (text.charAt(position) == '+' || text.charAt(position) == '-')) {
                position++;
            }
            int exponentDigits = 0;
            while (position < length && isDigit(text.charAt(position))) {
                position++;
                exponentDigits++;
            }
            if (exponentDigits == 0) {
                return false;
            }
        }
        return position == length;
    }

    private static boolean isDigit(char c) {
        return c >= '0' && c <= '9';
    }
}
