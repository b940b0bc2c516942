/* Prediction log lines straight into columns: the exporter's fast path for records of the documented format.
 *
 * Why: decoding a line into Python objects (a dict of features, a float object per value) and taking it apart
 * again costs more than everything else the exporter does per record. This scanner reads each line of the
 * format the instrumentation writes and puts its numeric features into a float64 matrix, with no Python object
 * per value. It accepts a line only when the answer is certain: anything unusual (an escape in a string, an
 * unknown or repeated key, a feature absent or of the wrong type, a non-finite or huge number, a timestamp it does
 * not know, another model) sends the line back to the exact decoder (`decode.py`), which gives the same result
 * or the reason the line is bad. `tests/test_fastscan.py` checks both paths agree, line by line.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

enum { F_ID = 1, F_TIMESTAMP = 2, F_MODEL = 4, F_VERSION = 8, F_FEATURES = 16, F_PREDICTION = 32, F_SCORE = 64 };
#define REQUIRED (F_ID | F_TIMESTAMP | F_MODEL | F_VERSION | F_FEATURES | F_PREDICTION)

typedef struct {
    const char *at;
    const char *end;
} Cursor;

typedef struct {
    const char *text;
    Py_ssize_t size;
} Name;

static const double POWERS_OF_TEN[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                       1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static inline void skip_space(Cursor *c) {
    while (c->at < c->end && (*c->at == ' ' || *c->at == '\t' || *c->at == '\n' || *c->at == '\r')) c->at++;
}

static inline int expect(Cursor *c, char want) {
    skip_space(c);
    if (c->at < c->end && *c->at == want) {
        c->at++;
        return 1;
    }
    return 0;
}

/* A string without escapes or control characters: its bytes (not yet checked as UTF-8). */
static inline int read_plain_string(Cursor *c, const char **text, Py_ssize_t *size) {
    skip_space(c);
    if (c->at >= c->end || *c->at != '"') return 0;
    const char *start = ++c->at;
    while (c->at < c->end) {
        unsigned char byte = (unsigned char)*c->at;
        if (byte == '"') {
            *text = start;
            *size = c->at - start;
            c->at++;
            return 1;
        }
        if (byte == '\\' || byte < 0x20) return 0;
        c->at++;
    }
    return 0;
}

/* A JSON number. Sets *value; *is_integer when it has neither fraction nor exponent, and then *integer when its
 * digits fit an int64 with room to spare (at most 18 digits). Returns 0 for anything that is not a JSON number
 * or is not finite as a double. */
static int read_number(Cursor *c, double *value, int *is_integer, long long *integer) {
    const char *start = c->at, *p = c->at, *end = c->end;
    int negative = 0;
    if (p < end && *p == '-') {
        negative = 1;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9') return 0;
    uint64_t mantissa = 0;
    int digits = 0, dropped = 0;
    if (*p == '0') {
        p++;
    } else {
        while (p < end && *p >= '0' && *p <= '9') {
            if (digits < 19) {
                mantissa = mantissa * 10 + (uint64_t)(*p - '0');
                digits++;
            } else {
                dropped++;
            }
            p++;
        }
    }
    int exponent = dropped, fraction_digits = 0;
    int integral = 1;
    if (p < end && *p == '.') {
        integral = 0;
        p++;
        if (p >= end || *p < '0' || *p > '9') return 0;
        while (p < end && *p >= '0' && *p <= '9') {
            if (mantissa == 0 && *p == '0') {
                exponent--;  /* leading zeros of the fraction: no significant digit yet */
            } else if (digits < 19) {
                mantissa = mantissa * 10 + (uint64_t)(*p - '0');
                digits++;
                exponent--;
            } else {
                dropped++;
            }
            fraction_digits++;
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        integral = 0;
        p++;
        int exponent_negative = 0;
        if (p < end && (*p == '+' || *p == '-')) exponent_negative = (*p++ == '-');
        if (p >= end || *p < '0' || *p > '9') return 0;
        int written = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            written = written * 10 + (*p - '0');
            if (written >= 100000) return 0;  /* msgspec reads exponents up to 99999 exactly, beyond not */
            p++;
        }
        exponent += exponent_negative ? -written : written;
    }
    c->at = p;
    *is_integer = integral;
    if (integral) {
        if (digits + dropped > 18) return 0;  /* may not fit an int64: the exact decoder judges it */
        *integer = negative ? -(long long)mantissa : (long long)mantissa;
        if (digits <= 15) {  /* as the exact decoder's int becomes a float: exactly (and -0 is 0) */
            *value = (double)*integer;
            return 1;
        }
    }
    /* Clinger's fast path: an exact mantissa times an exact power of ten rounds once, correctly. */
    if (digits <= 15 && dropped == 0 && exponent >= -22 && exponent <= 22) {
        double result = (double)mantissa;
        result = exponent < 0 ? result / POWERS_OF_TEN[-exponent] : result * POWERS_OF_TEN[exponent];
        *value = negative ? -result : result;
        return 1;
    }
    /* Otherwise Python's own correctly rounded conversion, on a copy that ends where the number does. */
    char buffer[64];
    Py_ssize_t length = p - start;
    if (length >= (Py_ssize_t)sizeof(buffer)) return 0;
    memcpy(buffer, start, (size_t)length);
    buffer[length] = '\0';
    char *stop = NULL;
    double result = PyOS_string_to_double(buffer, &stop, NULL);
    if (result == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (stop != buffer + length || !isfinite(result)) return 0;
    *value = result;
    return 1;
}

static inline int two_digits(const char *p) {
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9') return -1;
    return (p[0] - '0') * 10 + (p[1] - '0');
}

static int64_t days_from_civil(int64_t year, int month, int day) {
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    int64_t year_of_era = year - era * 400;
    int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468;
}

/* RFC 3339 `YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+HH:MM|-HH:MM)` as epoch seconds, exactly as
 * `datetime.timestamp()` gives it: whole microseconds divided by 10^6, rounded once (exact while the microseconds
 * fit a double's 53 bits, until the year 2255). Other forms and later times: 0. */
static int parse_timestamp(const char *text, Py_ssize_t size, double *seconds) {
    static const int DAYS_IN_MONTH[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (size < 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' || text[16] != ':')
        return 0;
    int year_high = two_digits(text), year_low = two_digits(text + 2), month = two_digits(text + 5),
        day = two_digits(text + 8), hour = two_digits(text + 11), minute = two_digits(text + 14),
        second = two_digits(text + 17);
    if (year_high < 0 || year_low < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 ||
        minute < 0 || minute > 59 || second < 0 || second > 59)
        return 0;
    int year = year_high * 100 + year_low;
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (year < 1 || day > DAYS_IN_MONTH[month - 1] + (month == 2 && leap)) return 0;
    const char *p = text + 19, *end = text + size;
    int64_t micros = 0;
    if (p < end && *p == '.') {
        p++;
        int digits = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            if (++digits > 6) return 0;
            micros = micros * 10 + (*p - '0');
            p++;
        }
        if (digits == 0) return 0;
        while (digits++ < 6) micros *= 10;
    }
    int offset_minutes;
    if (end - p == 1 && *p == 'Z') {
        offset_minutes = 0;
    } else if (end - p == 6 && (*p == '+' || *p == '-') && p[3] == ':') {
        int offset_hours = two_digits(p + 1), offset_rest = two_digits(p + 4);
        if (offset_hours < 0 || offset_hours > 23 || offset_rest < 0 || offset_rest > 59) return 0;
        offset_minutes = (offset_hours * 60 + offset_rest) * (*p == '-' ? -1 : 1);
    } else {
        return 0;
    }
    int64_t whole = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second -
                    (int64_t)offset_minutes * 60;
    int64_t total = whole * 1000000 + micros;
    if (total > (INT64_C(1) << 53) || total < -(INT64_C(1) << 53)) return 0;  /* from 2255 on, not exact as a double */
    *seconds = (double)total / 1e6;
    return 1;
}

static PyObject *string_object(const char *text, Py_ssize_t size) {
    PyObject *result = PyUnicode_DecodeUTF8(text, size, NULL);
    if (result == NULL) PyErr_Clear();
    return result;
}

/* A scalar as the exact decoder gives it: str, int (int64), float, bool or None. NULL when it is not one. */
static PyObject *read_scalar(Cursor *c) {
    skip_space(c);
    if (c->at >= c->end) return NULL;
    char first = *c->at;
    if (first == '"') {
        const char *text;
        Py_ssize_t size;
        if (!read_plain_string(c, &text, &size)) return NULL;
        return string_object(text, size);
    }
    if (first == 't' && c->end - c->at >= 4 && memcmp(c->at, "true", 4) == 0) {
        c->at += 4;
        Py_RETURN_TRUE;
    }
    if (first == 'f' && c->end - c->at >= 5 && memcmp(c->at, "false", 5) == 0) {
        c->at += 5;
        Py_RETURN_FALSE;
    }
    if (first == 'n' && c->end - c->at >= 4 && memcmp(c->at, "null", 4) == 0) {
        c->at += 4;
        Py_RETURN_NONE;
    }
    double value;
    int is_integer;
    long long integer;
    if (!read_number(c, &value, &is_integer, &integer)) return NULL;
    PyObject *result = is_integer ? PyLong_FromLongLong(integer) : PyFloat_FromDouble(value);
    if (result == NULL) PyErr_Clear();  /* out of memory: the line goes to the exact decoder, which will say so */
    return result;
}

/* A number (as a double) or null (NaN); 0 for anything else. */
static inline int read_number_or_null(Cursor *c, double *value) {
    skip_space(c);
    if (c->at < c->end && *c->at == 'n') {
        if (c->end - c->at >= 4 && memcmp(c->at, "null", 4) == 0) {
            c->at += 4;
            *value = NAN;
            return 1;
        }
        return 0;
    }
    int is_integer;
    long long integer;
    return read_number(c, value, &is_integer, &integer);
}

static inline int same_text(const char *text, Py_ssize_t size, const char *want, Py_ssize_t want_size) {
    return size == want_size && memcmp(text, want, (size_t)size) == 0;
}

typedef struct {
    const Name *numeric;
    Py_ssize_t n_numeric;
    const Name *categorical;
    Py_ssize_t n_categorical;
    Name model_name;
    Name model_version;
} Schema;

/* The features object: numeric values into `row`, categorical ones as objects into `categories` (new
 * references). Every feature of the schema exactly once, nothing else. */
static int read_features(Cursor *c, const Schema *schema, double *row, PyObject **categories, unsigned char *seen) {
    Py_ssize_t total = schema->n_numeric + schema->n_categorical, found = 0;
    memset(seen, 0, (size_t)total);
    if (!expect(c, '{')) return 0;
    if (expect(c, '}')) return total == 0;
    for (;;) {
        const char *key;
        Py_ssize_t key_size;
        if (!read_plain_string(c, &key, &key_size) || !expect(c, ':')) return 0;
        Py_ssize_t index = -1;
        for (Py_ssize_t i = 0; i < schema->n_numeric; i++) {
            if (same_text(key, key_size, schema->numeric[i].text, schema->numeric[i].size)) {
                index = i;
                break;
            }
        }
        if (index >= 0) {
            if (seen[index] || !read_number_or_null(c, &row[index])) return 0;
        } else {
            for (Py_ssize_t i = 0; i < schema->n_categorical; i++) {
                if (same_text(key, key_size, schema->categorical[i].text, schema->categorical[i].size)) {
                    index = schema->n_numeric + i;
                    break;
                }
            }
            if (index < 0 || seen[index]) return 0;  /* an unknown or repeated feature */
            PyObject *value = read_scalar(c);
            if (value == NULL) return 0;
            categories[index - schema->n_numeric] = value;
        }
        seen[index] = 1;
        found++;
        if (expect(c, ',')) continue;
        if (expect(c, '}')) return found == total;
        return 0;
    }
}

typedef struct {
    PyObject *id;
    PyObject *prediction;
    PyObject *score;
    double timestamp;
} Row;

static void clear_row(Row *row, PyObject **categories, Py_ssize_t n_categorical) {
    Py_CLEAR(row->id);
    Py_CLEAR(row->prediction);
    Py_CLEAR(row->score);
    for (Py_ssize_t i = 0; i < n_categorical; i++) Py_CLEAR(categories[i]);
}

/* One line; 1 when every field was read into `row`, `features_row` and `categories`. */
static int read_line(const char *text, Py_ssize_t size, const Schema *schema, Row *row, double *features_row,
                     PyObject **categories, unsigned char *seen) {
    Cursor c = {text, text + size};
    int fields = 0;
    if (!expect(&c, '{')) return 0;
    for (;;) {
        const char *key, *value;
        Py_ssize_t key_size, value_size;
        if (!read_plain_string(&c, &key, &key_size) || !expect(&c, ':')) return 0;
        int field;
        if (same_text(key, key_size, "features", 8)) {
            field = F_FEATURES;
            if (fields & field) return 0;
            if (!read_features(&c, schema, features_row, categories, seen)) return 0;
        } else if (same_text(key, key_size, "prediction_id", 13)) {
            field = F_ID;
            if ((fields & field) || !read_plain_string(&c, &value, &value_size) || value_size == 0) return 0;
            if ((row->id = string_object(value, value_size)) == NULL) return 0;
        } else if (same_text(key, key_size, "timestamp", 9)) {
            field = F_TIMESTAMP;
            if ((fields & field) || !read_plain_string(&c, &value, &value_size)) return 0;
            if (!parse_timestamp(value, value_size, &row->timestamp)) return 0;
        } else if (same_text(key, key_size, "model_name", 10)) {
            field = F_MODEL;
            if ((fields & field) || !read_plain_string(&c, &value, &value_size)) return 0;
            if (!same_text(value, value_size, schema->model_name.text, schema->model_name.size)) return 0;
        } else if (same_text(key, key_size, "model_version", 13)) {
            field = F_VERSION;
            if ((fields & field) || !read_plain_string(&c, &value, &value_size)) return 0;
            if (!same_text(value, value_size, schema->model_version.text, schema->model_version.size)) return 0;
        } else if (same_text(key, key_size, "prediction", 10)) {
            field = F_PREDICTION;
            if ((fields & field) || (row->prediction = read_scalar(&c)) == NULL) return 0;
        } else if (same_text(key, key_size, "score", 5)) {
            field = F_SCORE;
            double score;
            if ((fields & field) || !read_number_or_null(&c, &score)) return 0;
            if (isnan(score)) {
                Py_INCREF(Py_None);
                row->score = Py_None;
            } else if ((row->score = PyFloat_FromDouble(score)) == NULL) {
                PyErr_Clear();
                return 0;
            }
        } else {
            return 0;  /* a field the format does not have: the exact decoder knows what to do with it */
        }
        fields |= field;
        if (expect(&c, ',')) continue;
        if (!expect(&c, '}')) return 0;
        skip_space(&c);
        if (c.at != c.end || (fields & REQUIRED) != REQUIRED) return 0;
        if (!(fields & F_SCORE)) {
            Py_INCREF(Py_None);
            row->score = Py_None;
        }
        return 1;
    }
}

/* The UTF-8 text of a tuple of str; it lives as long as the strs, which the caller's tuple keeps for the call. */
static int names_of(PyObject *tuple, Name **names, Py_ssize_t *count) {
    Py_ssize_t n = PyTuple_GET_SIZE(tuple);
    *names = PyMem_Calloc((size_t)(n ? n : 1), sizeof(Name));
    if (*names == NULL) {
        PyErr_NoMemory();
        return 0;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(tuple, i);
        if (!PyUnicode_Check(item)) {
            PyErr_SetString(PyExc_TypeError, "feature names must be str");
            return 0;
        }
        (*names)[i].text = PyUnicode_AsUTF8AndSize(item, &(*names)[i].size);
        if ((*names)[i].text == NULL) return 0;
    }
    *count = n;
    return 1;
}

PyDoc_STRVAR(scan_doc,
"scan(lines, model_name, model_version, numeric, categorical)\n--\n\n"
"Read prediction log lines of `model_name`/`model_version` whose features are exactly `numeric` (numbers or\n"
"null) and `categorical` (scalars). Returns (slow, ids, timestamps, predictions, scores, matrix, categories):\n"
"the indices of the lines left to the exact decoder, then, for the others in order, their ids, their epoch\n"
"timestamps (float64 bytes), predictions, scores (float or None), numeric features (float64 bytes, row-major,\n"
"NaN for null) and one list of values per categorical feature.");

static PyObject *scan(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *lines, *numeric_names, *categorical_names, *given_lines;
    const char *model_name, *model_version;
    Py_ssize_t model_name_size, model_version_size;
    if (!PyArg_ParseTuple(args, "O!s#s#O!O!", &PyList_Type, &given_lines, &model_name, &model_name_size, &model_version,
                          &model_version_size, &PyTuple_Type, &numeric_names, &PyTuple_Type, &categorical_names))
        return NULL;
    Schema schema = {NULL, 0, NULL, 0, {model_name, model_name_size}, {model_version, model_version_size}};
    lines = NULL;
    Name *numeric = NULL, *categorical = NULL;
    PyObject *slow = NULL, *ids = NULL, *timestamps = NULL, *predictions = NULL, *scores = NULL, *matrix = NULL,
             *categories = NULL, *result = NULL;
    PyObject **row_categories = NULL;
    unsigned char *seen = NULL;
    Row row = {NULL, NULL, NULL, 0.0};
    if (!names_of(numeric_names, &numeric, &schema.n_numeric) ||
        !names_of(categorical_names, &categorical, &schema.n_categorical))
        goto done;
    schema.numeric = numeric;
    schema.categorical = categorical;
    /* A tuple of the lines: it holds them, whatever happens to the caller's list while objects are made. */
    if ((lines = PyList_AsTuple(given_lines)) == NULL) goto done;
    Py_ssize_t n_lines = PyTuple_GET_SIZE(lines), width = schema.n_numeric, kept = 0;
    slow = PyList_New(0);
    ids = PyList_New(0);
    predictions = PyList_New(0);
    scores = PyList_New(0);
    categories = PyList_New(schema.n_categorical);
    timestamps = PyBytes_FromStringAndSize(NULL, n_lines * (Py_ssize_t)sizeof(double));
    matrix = PyBytes_FromStringAndSize(NULL, n_lines * width * (Py_ssize_t)sizeof(double));
    row_categories = PyMem_Calloc((size_t)(schema.n_categorical + 1), sizeof(PyObject *));
    seen = PyMem_Malloc((size_t)(schema.n_numeric + schema.n_categorical + 1));
    if (!slow || !ids || !predictions || !scores || !categories || !timestamps || !matrix || !row_categories ||
        !seen) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < schema.n_categorical; i++) {
        PyObject *column = PyList_New(0);
        if (column == NULL) goto done;
        PyList_SET_ITEM(categories, i, column);
    }
    double *timestamp_out = (double *)PyBytes_AS_STRING(timestamps);
    double *matrix_out = (double *)PyBytes_AS_STRING(matrix);
    for (Py_ssize_t i = 0; i < n_lines; i++) {
        PyObject *line = PyTuple_GET_ITEM(lines, i);
        int ok = 0;
        if (PyBytes_Check(line)) {
            ok = read_line(PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line), &schema, &row, matrix_out + kept * width,
                           row_categories, seen);
        }
        if (ok) {
            timestamp_out[kept] = row.timestamp;
            ok = PyList_Append(ids, row.id) == 0 && PyList_Append(predictions, row.prediction) == 0 &&
                 PyList_Append(scores, row.score) == 0;
            for (Py_ssize_t j = 0; ok && j < schema.n_categorical; j++)
                ok = PyList_Append(PyList_GET_ITEM(categories, j), row_categories[j]) == 0;
            clear_row(&row, row_categories, schema.n_categorical);
            if (!ok) goto done;  /* out of memory */
            kept++;
        } else {
            clear_row(&row, row_categories, schema.n_categorical);
            PyObject *index = PyLong_FromSsize_t(i);
            if (index == NULL || PyList_Append(slow, index) != 0) {
                Py_XDECREF(index);
                goto done;
            }
            Py_DECREF(index);
        }
    }
    if (_PyBytes_Resize(&timestamps, kept * (Py_ssize_t)sizeof(double)) != 0 ||
        _PyBytes_Resize(&matrix, kept * width * (Py_ssize_t)sizeof(double)) != 0)
        goto done;
    result = PyTuple_Pack(7, slow, ids, timestamps, predictions, scores, matrix, categories);
done:
    clear_row(&row, row_categories, row_categories ? schema.n_categorical : 0);
    Py_XDECREF(slow);
    Py_XDECREF(ids);
    Py_XDECREF(timestamps);
    Py_XDECREF(predictions);
    Py_XDECREF(scores);
    Py_XDECREF(matrix);
    Py_XDECREF(categories);
    Py_XDECREF(lines);
    PyMem_Free(row_categories);
    PyMem_Free(seen);
    PyMem_Free(numeric);
    PyMem_Free(categorical);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, scan_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "promml.exporter._fastscan",
    "Prediction log lines straight into columns (see scan).", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastscan(void) { return PyModule_Create(&module); }
