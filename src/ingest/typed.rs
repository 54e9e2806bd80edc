//! The fast road for a request the clients send every day: straight from the bytes into typed
//! fields, without building a JSON tree and copying out of it first (about 8% of the service's CPU
//! per request, docs/performance.md).
//!
//! It reads only what [`super::scan`] has passed (UTF-8, escapes, nesting and duplicate fields are
//! settled there, for both decoders alike), and it only accepts: whatever it does not take as it is
//! (a wrong type, a value that does not parse) makes it step aside, and the tree decoder in the
//! parent module, which knows where and why a request is wrong, decides. The differential test in
//! `super::tests` holds the two, and the documented rules, to the same answers.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

use super::{parse_timestamp, parse_uuid};
use crate::report::{Metric, ProductFamily, Protocol, Report};

/// Decodes a request (the value [`super::scan::first_value`] found) the way the tree decoder would,
/// or gives up with `None`.
pub(super) fn decode(value: &[u8]) -> Option<Vec<Report>> {
    let Object(request) = serde_json::from_slice::<Object<Request>>(value).ok()?;
    request
        .reports
        .unwrap_or_default()
        .into_iter()
        .map(|Object(report)| report.into_domain())
        .collect()
}

#[derive(serde::Deserialize)]
struct Request<'a> {
    #[serde(borrow)]
    reports: Option<Vec<Object<WireReport<'a>>>>,
}

/// A report as protojson allows it: either field name, `null` for unset, unknown fields ignored.
/// serde refuses a field given under both names, as protojson does. The fields read once are
/// borrowed from the body where they have no escapes.
#[derive(serde::Deserialize)]
struct WireReport<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(rename = "instanceId", alias = "instance_id", borrow)]
    instance_id: Option<Cow<'a, str>>,
    #[serde(rename = "createTime", alias = "create_time", borrow)]
    create_time: Option<Cow<'a, str>>,
    #[serde(
        rename = "productFamily",
        alias = "product_family",
        default,
        deserialize_with = "product_family"
    )]
    product_family: Option<ProductFamily>,
    metrics: Option<Vec<Object<WireMetric>>>,
}

#[derive(serde::Deserialize)]
struct WireMetric {
    key: Option<String>,
    value: Option<String>,
}

impl WireReport<'_> {
    fn into_domain(self) -> Option<Report> {
        let uuid = |text: Option<Cow<str>>| text.as_deref().and_then(parse_uuid);
        let report_id = uuid(self.id)?;
        let instance_id = uuid(self.instance_id)?;
        let created_at = parse_timestamp(self.create_time.as_deref()?)?;
        let metrics = self
            .metrics
            .unwrap_or_default()
            .into_iter()
            .map(|Object(metric)| Metric {
                key: metric.key.unwrap_or_default(),
                value: metric.value.unwrap_or_default(),
            })
            .collect();
        Some(Report::new(
            Protocol::GenericReport,
            report_id,
            instance_id,
            self.product_family.unwrap_or(ProductFamily::Invalid),
            created_at,
            metrics,
        ))
    }
}

/// An enum name (unknown names are `PRODUCT_FAMILY_INVALID`) or number; `null` is unset.
fn product_family<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<ProductFamily>, D::Error> {
    struct FamilyVisitor;
    impl<'de> Visitor<'de> for FamilyVisitor {
        type Value = Option<ProductFamily>;
        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("an enum name or number")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
            Ok(Some(ProductFamily::from_name(name)))
        }
        fn visit_i64<E: de::Error>(self, number: i64) -> Result<Self::Value, E> {
            Ok(Some(ProductFamily::from_number(number)))
        }
        fn visit_u64<E: de::Error>(self, number: u64) -> Result<Self::Value, E> {
            // Beyond i64, no enum value: Invalid, as the tree decoder has it.
            Ok(Some(ProductFamily::from_number(
                i64::try_from(number).unwrap_or(i64::MAX),
            )))
        }
        fn visit_f64<E: de::Error>(self, number: f64) -> Result<Self::Value, E> {
            ProductFamily::from_json_number(number)
                .map(Some)
                .ok_or_else(|| E::custom("not an enum number"))
        }
    }
    deserializer.deserialize_any(FamilyVisitor)
}

/// A JSON object and nothing else: serde would also fill a struct from an array, field by field,
/// which protojson never does.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        deserializer
            .deserialize_map(ObjectVisitor(PhantomData))
            .map(Object)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::parse_report_tree;
    use super::*;

    const ID: &str = "6f1f4b48-5a4e-4a2f-9d0c-2a3b4c5d6e7f";
    const INSTANCE: &str = "0b5e1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d";

    /// What the fast road makes of a body must be what the tree decoder makes of it.
    fn assert_agrees(body: &str) -> Option<Vec<Report>> {
        let fast = decode(body.as_bytes());
        if let Some(reports) = &fast {
            assert_eq!(
                parse_report_tree(body.as_bytes()).as_ref(),
                Ok(reports),
                "{body}"
            );
        }
        fast
    }

    #[test]
    fn takes_the_everyday_request() {
        let body = format!(
            r#"{{"reports":[{{"id":"{ID}","instance_id":"{INSTANCE}","createTime":"2025-03-14T09:12:45Z",
               "productFamily":6,"metrics":[{{"key":"PMMServerVersion","value":"3.2.0"}},{{"key":"x","value":null}},{{}}]}}]}}"#
        );
        let reports = assert_agrees(&body).expect("accepted");
        assert_eq!(reports[0].version.as_deref(), Some("3.2.0"));
        assert_eq!(reports[0].product_family, ProductFamily::Pmm);
        assert_eq!(reports[0].metrics.len(), 3);
    }

    #[test]
    fn steps_aside_for_what_only_the_tree_decoder_can_judge() {
        let report = |fields: &str| format!(r#"{{"reports":[{{{fields}}}]}}"#);
        let valid =
            format!(r#""id":"{ID}","instanceId":"{INSTANCE}","createTime":"2025-03-14T09:12:45Z""#);
        for body in [
            // A struct filled from an array, field by field.
            format!(r#"{{"reports":[["{ID}","{INSTANCE}","2025-03-14T09:12:45Z"]]}}"#),
            format!(r#"[[{{{valid}}}]]"#),
            report(&format!(r#"{valid},"metrics":[["k","v"]]"#)),
            // Given twice: under both names, and twice under one (the last one counts).
            report(&format!(r#"{valid},"instance_id":"{INSTANCE}""#)),
            report(&format!(r#"{valid},"id":"{INSTANCE}""#)),
            // Enum numbers that are not integers.
            report(&format!(r#"{valid},"productFamily":6.5"#)),
            report(&format!(
                r#""id":"","instanceId":"{INSTANCE}","createTime":"2025-03-14T09:12:45Z""#
            )),
        ] {
            assert!(assert_agrees(&body).is_none(), "{body}");
        }
    }

    fn field_value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(format!(r#""{ID}""#)),
            Just(format!(r#""{INSTANCE}""#)),
            Just(r#""2025-03-14T09:12:45.5+02:00""#.to_owned()),
            Just(r#""PRODUCT_FAMILY_PS""#.to_owned()),
            Just(r#""""#.to_owned()),
            Just("null".to_owned()),
            Just("6".to_owned()),
            Just("-3".to_owned()),
            Just("1.5".to_owned()),
            Just("true".to_owned()),
            Just("{}".to_owned()),
            Just("[]".to_owned()),
            Just(r#"[{"key":"pillar_version","value":"8.0.36"},{"key":"k"},null,"k"]"#.to_owned()),
            Just(r#"[{"key":"PMMServerVersion","value":"3.1.0","key":"k"}]"#.to_owned()),
        ]
    }

    fn field_name() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "id",
            "instanceId",
            "instance_id",
            "createTime",
            "create_time",
            "productFamily",
            "product_family",
            "metrics",
            "other",
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn never_accepts_what_the_tree_decoder_would_not(
            reports in prop::collection::vec(
                (any::<[bool; 3]>(), prop::collection::vec((field_name(), field_value()), 0..5)),
                0..3,
            ),
            array_of_reports in any::<bool>(),
        ) {
            // A complete report, some of its fields left out, then fields of any kind added.
            let reports: Vec<String> = reports
                .iter()
                .map(|(keep, extra)| {
                    let base = [
                        ("id", format!(r#""{ID}""#)),
                        ("instanceId", format!(r#""{INSTANCE}""#)),
                        ("create_time", r#""2025-03-14T09:12:45Z""#.to_owned()),
                    ];
                    let fields: Vec<String> = base
                        .iter()
                        .zip(keep)
                        .filter(|(_, keep)| **keep)
                        .map(|(field, _)| field.clone())
                        .chain(extra.iter().map(|(name, value)| (*name, value.clone())))
                        .map(|(name, value)| format!(r#""{name}":{value}"#))
                        .collect();
                    format!("{{{}}}", fields.join(","))
                })
                .collect();
            let reports = if array_of_reports {
                format!("[{}]", reports.join(","))
            } else {
                reports.first().cloned().unwrap_or_else(|| "null".to_owned())
            };
            assert_agrees(&format!(r#"{{"reports":{reports}}}"#));
        }
    }
}
