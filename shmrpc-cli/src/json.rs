//! Arguments and results as JSON, matched against the types the server describes, to and from
//! the wire format (see `shmrpc::Wire`).
//!
//! | type | JSON |
//! |---|---|
//! | integers | numbers (128-bit ones also as strings, and printed as strings past 2^53) |
//! | `f32`, `f64` | numbers |
//! | `bool` | `true`, `false` |
//! | `char` | a one-character string |
//! | `()` | `null` |
//! | `String`, `&str` | a string |
//! | `[T; N]`, `Vec<T>`, `&[T]` | an array |
//! | `Option<T>` | `null` or the value |
//! | `Result<T, E>` | `{"Ok": ...}` or `{"Err": ...}` |
//! | structs | an object of their fields (an array for a tuple struct) |
//! | `ShmData` enums | the variant's name (or its number) |
//! | `Wire` enums | `"Variant"`, or `{"Variant": fields}` |

use serde_json::{Map, Number, Value, json};
use shmrpc::inspect::{Field, Type};

/// The largest message a server takes (`ServerOptions::max_message` is at most 1 GiB).
const MAX_MESSAGE: usize = 1 << 30;

/// The most values a reply is read into: a hostile server's description may claim an array of
/// billions of zero-size values.
const MAX_VALUES: usize = 10_000_000;

/// Appends `value`, of type `ty`, to the message `out`.
pub fn encode(ty: &Type, value: &Value, out: &mut Vec<u8>) -> Result<(), String> {
    let expected = |what: &str| format!("expected {what} for `{}`, got {value}", ty.name());
    match ty {
        Type::Primitive { name, size } => primitive(name, *size, value, out),
        Type::Array(t, n) => {
            let items = value
                .as_array()
                .ok_or_else(|| expected(&format!("an array of {n}")))?;
            if items.len() != *n {
                return Err(format!(
                    "expected {n} items for `{}`, got {}",
                    ty.name(),
                    items.len()
                ));
            }
            items.iter().try_for_each(|item| encode(t, item, out))
        }
        Type::Struct { size, fields, .. } => {
            // The largest message a server takes: a struct claiming more is a lie.
            if *size > MAX_MESSAGE {
                return Err(format!(
                    "`{}` claims {size} bytes, more than any message",
                    ty.name()
                ));
            }
            let mut bytes = vec![0u8; *size];
            for (field, v) in fields_of(ty, fields, value)? {
                let mut one = Vec::new();
                encode(&field.ty, v, &mut one)?;
                let end = field.offset + one.len();
                bytes
                    .get_mut(field.offset..end)
                    .ok_or("a field past the end of its struct")?
                    .copy_from_slice(&one);
            }
            out.extend_from_slice(&bytes);
            Ok(())
        }
        Type::Enum { repr, variants, .. } => {
            let number = match value {
                Value::String(s) => variants
                    .iter()
                    .find(|(n, _)| n == s)
                    .map(|(_, v)| *v)
                    .ok_or_else(|| {
                        let names: Vec<&str> = variants.iter().map(|(n, _)| n.as_str()).collect();
                        format!(
                            "`{}` has no variant `{s}` (it has: {})",
                            ty.name(),
                            names.join(", ")
                        )
                    })?,
                Value::Number(n) => n.as_u64().ok_or_else(|| expected("a variant"))?,
                _ => return Err(expected("a variant's name")),
            };
            primitive(&repr.name(), repr_size(repr), &json!(number), out)
        }
        Type::Unit => match value {
            Value::Null => Ok(()),
            _ => Err(expected("null")),
        },
        Type::Str => {
            let s = value.as_str().ok_or_else(|| expected("a string"))?;
            put_len(s.len(), out)?;
            out.extend_from_slice(s.as_bytes());
            Ok(())
        }
        Type::Seq(t) => {
            let items = value.as_array().ok_or_else(|| expected("an array"))?;
            put_len(items.len(), out)?;
            if let Type::Primitive { size, .. } = &**t
                && t.is_number()
            {
                let pad = shmrpc::inspect::number_padding(out.len(), items.len() * size);
                out.resize(out.len() + pad, 0);
            }
            items.iter().try_for_each(|item| encode(t, item, out))
        }
        Type::Option(t) => match value {
            Value::Null => {
                out.push(0);
                Ok(())
            }
            v => {
                out.push(1);
                encode(t, v, out)
            }
        },
        Type::Result(ok, err) => {
            let object = value
                .as_object()
                .filter(|o| o.len() == 1)
                .ok_or_else(|| expected(r#"{"Ok": ...} or {"Err": ...}"#))?;
            match (object.get("Ok"), object.get("Err")) {
                (Some(v), _) => {
                    out.push(0);
                    encode(ok, v, out)
                }
                (_, Some(e)) => {
                    out.push(1);
                    encode(err, e, out)
                }
                _ => Err(expected(r#"{"Ok": ...} or {"Err": ...}"#)),
            }
        }
        Type::Record { fields, .. } => fields_of(ty, fields, value)?
            .into_iter()
            .try_for_each(|(field, v)| encode(&field.ty, v, out)),
        Type::Sum { cases, .. } => {
            let (name, inner) = match value {
                Value::String(s) => (s.as_str(), &Value::Null),
                Value::Object(o) if o.len() == 1 => {
                    let (k, v) = o.iter().next().expect("one entry");
                    (k.as_str(), v)
                }
                _ => return Err(expected(r#""Variant" or {"Variant": ...}"#)),
            };
            let index = cases.iter().position(|c| c.name == name).ok_or_else(|| {
                let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
                format!(
                    "`{}` has no variant `{name}` (it has: {})",
                    ty.name(),
                    names.join(", ")
                )
            })?;
            out.extend_from_slice(&(index as u32).to_le_bytes());
            let case = &cases[index];
            let inner = match (case.fields.len(), inner) {
                // A one-field tuple variant may be given its value alone.
                (1, v) if case.fields[0].name == "0" && !v.is_array() => &json!([v]),
                (0, Value::Null) => &json!({}),
                _ => inner,
            };
            fields_of(ty, &case.fields, inner)?
                .into_iter()
                .try_for_each(|(field, v)| encode(&field.ty, v, out))
        }
    }
}

fn repr_size(repr: &Type) -> usize {
    match repr {
        Type::Primitive { size, .. } => (*size).min(16),
        _ => 4,
    }
}

fn put_len(n: usize, out: &mut Vec<u8>) -> Result<(), String> {
    let n = u32::try_from(n).map_err(|_| "a length over 4 GiB".to_owned())?;
    out.extend_from_slice(&n.to_le_bytes());
    Ok(())
}

/// The values of `fields`, from an object by name or (a tuple's) an array by position.
fn fields_of<'a>(
    ty: &Type,
    fields: &'a [Field],
    value: &'a Value,
) -> Result<Vec<(&'a Field, &'a Value)>, String> {
    let tuple = fields.first().is_some_and(|f| f.name == "0");
    match value {
        Value::Array(items) if tuple || fields.is_empty() => {
            if items.len() != fields.len() {
                return Err(format!(
                    "expected {} values for `{}`, got {}",
                    fields.len(),
                    ty.name(),
                    items.len()
                ));
            }
            Ok(fields.iter().zip(items).collect())
        }
        Value::Object(object) => {
            if let Some(extra) = object
                .keys()
                .find(|k| !fields.iter().any(|f| &f.name == *k))
            {
                return Err(format!("`{}` has no field `{extra}`", ty.name()));
            }
            fields
                .iter()
                .map(|f| {
                    object
                        .get(&f.name)
                        .map(|v| (f, v))
                        .ok_or_else(|| format!("field `{}` of `{}` is missing", f.name, ty.name()))
                })
                .collect()
        }
        other => Err(format!(
            "expected {} for `{}`, got {other}",
            if tuple { "an array" } else { "an object" },
            ty.name()
        )),
    }
}

fn primitive(name: &str, size: usize, value: &Value, out: &mut Vec<u8>) -> Result<(), String> {
    let bad = || format!("expected a `{name}`, got {value}");
    match name {
        "bool" => out.push(u8::from(value.as_bool().ok_or_else(bad)?)),
        "char" => {
            let s = value.as_str().ok_or_else(bad)?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => out.extend_from_slice(&u32::from(c).to_le_bytes()),
                _ => return Err(format!("expected one character, got {value}")),
            }
        }
        "f32" => out.extend_from_slice(&(value.as_f64().ok_or_else(bad)? as f32).to_le_bytes()),
        "f64" => out.extend_from_slice(&value.as_f64().ok_or_else(bad)?.to_le_bytes()),
        _ => {
            let signed = name.starts_with('i');
            let wide: i128 = match value {
                Value::Number(n) => n
                    .as_i64()
                    .map(i128::from)
                    .or_else(|| n.as_u64().map(i128::from))
                    .ok_or_else(bad)?,
                Value::String(s) if size == 16 => {
                    if signed {
                        s.parse::<i128>().map_err(|_| bad())?
                    } else {
                        let u = s.parse::<u128>().map_err(|_| bad())?;
                        out.extend_from_slice(&u.to_le_bytes());
                        return Ok(());
                    }
                }
                _ => return Err(bad()),
            };
            let bits = size * 8;
            let fits = if signed {
                bits == 128 || (wide >= -(1i128 << (bits - 1)) && wide < (1i128 << (bits - 1)))
            } else {
                wide >= 0 && (bits == 128 || wide < (1i128 << bits))
            };
            if !fits {
                return Err(format!("{value} does not fit a `{name}`"));
            }
            out.extend_from_slice(&wide.to_le_bytes()[..size]);
        }
    }
    Ok(())
}

/// Reads a value of type `ty` from `bytes` at `*at`.
pub fn decode(ty: &Type, bytes: &[u8], at: &mut usize) -> Result<Value, String> {
    let mut budget = MAX_VALUES;
    decode_counted(ty, bytes, at, &mut budget)
}

/// As `decode`, reading at most `budget` more values.
fn decode_counted(
    ty: &Type,
    bytes: &[u8],
    at: &mut usize,
    budget: &mut usize,
) -> Result<Value, String> {
    *budget = budget
        .checked_sub(1)
        .ok_or_else(|| format!("a reply of more than {MAX_VALUES} values"))?;
    let take = |at: &mut usize, n: usize| -> Result<&[u8], String> {
        let part = bytes
            .get(*at..at.saturating_add(n))
            .ok_or_else(|| format!("a reply cut short reading `{}`", ty.name()))?;
        *at += n;
        Ok(part)
    };
    Ok(match ty {
        Type::Primitive { name, size } => {
            let b = take(at, *size)?;
            read_primitive(name, b)?
        }
        Type::Array(_, n) if *n > *budget => {
            return Err(format!("a reply of more than {MAX_VALUES} values"));
        }
        Type::Array(t, n) => Value::Array(
            (0..*n)
                .map(|_| decode_counted(t, bytes, at, budget))
                .collect::<Result<_, _>>()?,
        ),
        Type::Struct { size, fields, .. } => {
            let b = take(at, *size)?;
            let mut object = Map::new();
            for f in fields {
                let mut pos = f.offset;
                object.insert(f.name.clone(), decode_counted(&f.ty, b, &mut pos, budget)?);
            }
            Value::Object(object)
        }
        Type::Enum { repr, variants, .. } => {
            let b = take(at, repr_size(repr))?;
            let mut raw = [0u8; 16];
            raw[..b.len().min(16)].copy_from_slice(&b[..b.len().min(16)]);
            let n = u128::from_le_bytes(raw);
            variants
                .iter()
                .find(|(_, v)| u128::from(*v) == n)
                .map(|(name, _)| Value::String(name.clone()))
                .ok_or_else(|| format!("`{}` has no variant numbered {n}", ty.name()))?
        }
        Type::Unit => Value::Null,
        Type::Str => {
            let n = u32::from_le_bytes(take(at, 4)?.try_into().expect("4")) as usize;
            let b = take(at, n)?;
            Value::String(String::from_utf8(b.to_vec()).map_err(|_| "text that is not UTF-8")?)
        }
        Type::Seq(t) => {
            let n = u32::from_le_bytes(take(at, 4)?.try_into().expect("4")) as usize;
            if let Type::Primitive { size, .. } = &**t
                && t.is_number()
            {
                take(
                    at,
                    shmrpc::inspect::number_padding(*at, n.saturating_mul(*size)),
                )?;
            }
            if n > bytes.len() || n > *budget {
                return Err(format!("a count of {n} past the end of the reply"));
            }
            Value::Array(
                (0..n)
                    .map(|_| decode_counted(t, bytes, at, budget))
                    .collect::<Result<_, _>>()?,
            )
        }
        Type::Option(t) => match take(at, 1)?[0] {
            0 => Value::Null,
            1 => decode_counted(t, bytes, at, budget)?,
            _ => return Err("an Option tag other than 0 or 1".into()),
        },
        Type::Result(ok, err) => match take(at, 1)?[0] {
            0 => json!({ "Ok": decode_counted(ok, bytes, at, budget)? }),
            1 => json!({ "Err": decode_counted(err, bytes, at, budget)? }),
            _ => return Err("a Result tag other than 0 or 1".into()),
        },
        Type::Record { fields, .. } => decode_fields(fields, bytes, at, budget)?,
        Type::Sum { cases, .. } => {
            let index = u32::from_le_bytes(take(at, 4)?.try_into().expect("4")) as usize;
            let case = cases
                .get(index)
                .ok_or_else(|| format!("`{}` has no variant #{index}", ty.name()))?;
            if case.fields.is_empty() {
                Value::String(case.name.clone())
            } else {
                let mut object = Map::new();
                object.insert(
                    case.name.clone(),
                    decode_fields(&case.fields, bytes, at, budget)?,
                );
                Value::Object(object)
            }
        }
    })
}

fn decode_fields(
    fields: &[Field],
    bytes: &[u8],
    at: &mut usize,
    budget: &mut usize,
) -> Result<Value, String> {
    if fields.first().is_some_and(|f| f.name == "0") {
        return Ok(Value::Array(
            fields
                .iter()
                .map(|f| decode_counted(&f.ty, bytes, at, budget))
                .collect::<Result<_, _>>()?,
        ));
    }
    let mut object = Map::new();
    for f in fields {
        object.insert(f.name.clone(), decode_counted(&f.ty, bytes, at, budget)?);
    }
    Ok(Value::Object(object))
}

fn read_primitive(name: &str, b: &[u8]) -> Result<Value, String> {
    let mut raw = [0u8; 16];
    raw[..b.len()].copy_from_slice(b);
    Ok(match name {
        "bool" => match b[0] {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            n => return Err(format!("a bool of {n}")),
        },
        "char" => {
            let n = u32::from_le_bytes(raw[..4].try_into().expect("4"));
            Value::String(
                char::from_u32(n)
                    .ok_or_else(|| format!("a char of {n:#x}"))?
                    .to_string(),
            )
        }
        "f32" => json!(f32::from_le_bytes(raw[..4].try_into().expect("4"))),
        "f64" => json!(f64::from_le_bytes(raw[..8].try_into().expect("8"))),
        _ => {
            let bits = b.len() * 8;
            let unsigned = u128::from_le_bytes(raw);
            let value: i128 = if name.starts_with('i') && bits < 128 {
                // Sign-extend.
                ((unsigned << (128 - bits)) as i128) >> (128 - bits)
            } else if name.starts_with('i') {
                unsigned as i128
            } else {
                return Ok(match u64::try_from(unsigned) {
                    Ok(n) if n < (1 << 53) || bits <= 64 => Value::Number(Number::from(n)),
                    _ => Value::String(unsigned.to_string()),
                });
            };
            match i64::try_from(value) {
                Ok(n) if bits <= 64 || n.unsigned_abs() < (1 << 53) => {
                    Value::Number(Number::from(n))
                }
                _ => Value::String(value.to_string()),
            }
        }
    })
}
