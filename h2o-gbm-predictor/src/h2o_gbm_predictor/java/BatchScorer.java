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
 *
 * <p>{@link #explain} also returns each row's feature contributions (TreeSHAP, h2o-genmodel's
 * predictContributions), through a second wrapper made on first use: a wrapper with contributions enabled computes
 * them in every prediction.
 */
public final class BatchScorer {
    private static final char SEPARATOR = '\u001f';

    private final MojoModel mojo;
    private final EasyPredictModelWrapper.ErrorConsumer unknownLevelRecorder;
    private final EasyPredictModelWrapper model;
    private EasyPredictModelWrapper explainer;
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
        this.mojo = MojoModel.load(mojoPath);
        this.unknownLevelRecorder = new EasyPredictModelWrapper.ErrorConsumer() {
            @Override
            public void dataTransformError(String column, Object value, String message) {}

            @Override
            public void unseenCategorical(String column, Object value, String message) {
                unknownLevelRows.add(currentRow);
                unknownLevelColumns.add(column);
                unknownLevelValues.add(String.valueOf(value));
            }
        };
        this.model = new EasyPredictModelWrapper(wrapperConfig());
        this.category = model.getModelCategory();
        this.featureNames = featureNames.clone();
        this.numericFeature = numericFeature.clone();
        switch (category) {
            case Binomial, Multinomial -> this.outputWidth = 1 + model.getResponseDomainValues().length;
            case Regression -> this.outputWidth = 1;
            default -> throw new IllegalArgumentException("unsupported model category " + category);
        }
    }

    private EasyPredictModelWrapper.Config wrapperConfig() {
        return new EasyPredictModelWrapper.Config()
                .setModel(mojo)
                .setConvertUnknownCategoricalLevelsToNa(true)
                .setErrorConsumer(unknownLevelRecorder);
    }

    public int outputWidth() {
        return outputWidth;
    }

    /** Whether {@link #explain} works: h2o-genmodel has no contributions for multinomial models. */
    public boolean explainable() {
        return category != ModelCategory.Multinomial;
    }

    /** The contributions' names in {@link #explain}'s order: the features, then BiasTerm. */
    public String[] contributionNames() throws IOException {
        return explainer().getContributionNames();
    }

    private EasyPredictModelWrapper explainer() throws IOException {
        if (explainer == null) {
            explainer = new EasyPredictModelWrapper(wrapperConfig().setEnableContributions(true));
        }
        return explainer;
    }

    public Batch score(String cells, int rowCount) throws InvalidCellException, PredictException {
        return scoreWith(model, 0, cells, rowCount);
    }

    /**
     * As {@link #score}, each output row followed by the row's contributions ({@link #contributionNames} order; for
     * a binomial model they sum to the logit of p(class 1), for a regression to the prediction).
     */
    public Batch explain(String cells, int rowCount) throws InvalidCellException, PredictException, IOException {
        EasyPredictModelWrapper wrapper = explainer();
        return scoreWith(wrapper, wrapper.getContributionNames().length, cells, rowCount);
    }

    private Batch scoreWith(EasyPredictModelWrapper wrapper, int contributionCount, String cells, int rowCount)
            throws InvalidCellException, PredictException {
        String[] rowCells = new String[featureNames.length];
        int position = 0;
        int width = outputWidth + contributionCount;
        double[] values = new double[rowCount * width];
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
            predictRow(wrapper, toRowData(rowCells, row), row, values, row * width);
        }
        return new Batch(
                values,
                unknownLevelRows.stream().mapToInt(Integer::intValue).toArray(),
                unknownLevelColumns.toArray(new String[0]),
                unknownLevelValues.toArray(new String[0]));
    }

    /** Scores one row into values[offset, offset + outputWidth); unknown levels met are recorded under {@code row}. */
    void predictRow(RowData data, int row, double[] values, int offset) throws PredictException {
        predictRow(model, data, row, values, offset);
    }

    /** As above with {@code wrapper}; an explainer's contributions follow the outputs. */
    private void predictRow(EasyPredictModelWrapper wrapper, RowData data, int row, double[] values, int offset)
            throws PredictException {
        currentRow = row;
        float[] contributions;
        switch (category) {
            case Binomial -> {
                BinomialModelPrediction prediction = wrapper.predictBinomial(data);
                values[offset] = prediction.labelIndex;
                System.arraycopy(prediction.classProbabilities, 0, values, offset + 1, outputWidth - 1);
                contributions = prediction.contributions;
            }
            case Multinomial -> {
                MultinomialModelPrediction prediction = wrapper.predictMultinomial(data);
                values[offset] = prediction.labelIndex;
                System.arraycopy(prediction.classProbabilities, 0, values, offset + 1, outputWidth - 1);
                contributions = null;
            }
            default -> {
                RegressionModelPrediction prediction = wrapper.predictRegression(data);
                values[offset] = prediction.value;
                contributions = prediction.contributions;
            }
        }
        if (contributions != null) {
            for (int index = 0; index < contributions.length; index++) {
                values[offset + outputWidth + index] = contributions[index];
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
