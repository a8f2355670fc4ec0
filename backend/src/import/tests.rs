//! The importer as an admin meets it: whole files in, users and messages out.

use super::*;

const HEADER: &str = "source_user,source_password,target_user,target_password,route\n";

/// `main` needs both passwords and is the default; `hosted` has master users on both sides.
fn ctx() -> ImportContext {
    ImportContext::new([
        ImportRoute::new("main"),
        ImportRoute::new("hosted")
            .with_source_master_user()
            .with_target_master_user(),
    ])
    .unwrap()
    .with_default_route("main")
    .unwrap()
}

/// Two routes, neither a default: the file must name one per row.
fn ctx_without_default() -> ImportContext {
    ImportContext::new([ImportRoute::new("eu"), ImportRoute::new("us")]).unwrap()
}

fn parse(text: &str) -> Parsed {
    parse_users_csv(text.as_bytes(), &ctx())
}

/// Every error as the admin reads it.
fn messages(parsed: &Parsed) -> Vec<String> {
    parsed.errors.iter().map(ToString::to_string).collect()
}

fn only_error(parsed: &Parsed) -> &ImportError {
    assert_eq!(parsed.errors.len(), 1, "{:#?}", messages(parsed));
    &parsed.errors[0]
}

fn assert_clean(parsed: &Parsed) {
    assert!(parsed.is_clean(), "{:#?}", messages(parsed));
}

fn good_file(users: usize) -> String {
    let mut csv = HEADER.to_owned();
    for i in 1..=users {
        csv.push_str(&format!(
            "user{i}@old.example,Old-Secret-{i},user{i}@new.example,New-Secret-{i},\n"
        ));
    }
    csv
}

// ---- good files ------------------------------------------------------------------------

#[test]
fn fifty_good_users_yield_fifty_users_and_no_errors() {
    let parsed = parse(&good_file(50));
    assert_clean(&parsed);
    assert_eq!(parsed.users.len(), 50);
    assert_eq!(parsed.total_rows, 50);
    let first = &parsed.users[0];
    assert_eq!(first.line, 2);
    assert_eq!(first.source_user.as_str(), "user1@old.example");
    assert_eq!(first.target_user.as_str(), "user1@new.example");
    assert_eq!(
        first.source_password.as_ref().unwrap().expose(),
        "Old-Secret-1"
    );
    assert_eq!(
        first.target_password.as_ref().unwrap().expose(),
        "New-Secret-1"
    );
    assert_eq!(first.route, "main");
    assert!(first.route_from_default);
    assert_eq!(parsed.users[49].line, 51);
    let preview = parsed.preview();
    assert_eq!((preview.total_rows, preview.valid_rows), (50, 50));
    assert!(preview.is_clean());
}

#[test]
fn a_utf8_byte_order_mark_is_accepted() {
    let csv = format!("\u{FEFF}{}", good_file(2));
    let parsed = parse(&csv);
    assert_clean(&parsed);
    assert_eq!(parsed.users.len(), 2);
}

#[test]
fn crlf_line_ends_are_accepted() {
    let csv = good_file(3).replace('\n', "\r\n");
    let parsed = parse(&csv);
    assert_clean(&parsed);
    assert_eq!(parsed.users.len(), 3);
    assert_eq!(
        parsed.users[2].target_password.as_ref().unwrap().expose(),
        "New-Secret-3"
    );
}

#[test]
fn quoted_values_may_hold_commas_and_doubled_quotes() {
    let csv = format!(
        "{HEADER}\"a@x\",\"p,1\",\"b@y\",\"q,\"\"2\"\"\",\"main\"\n\"\",\"\",\"\",\"\",\"\"\n"
    );
    let parsed = parse(&csv);
    assert_clean(&parsed);
    let user = &parsed.users[0];
    assert_eq!(user.source_password.as_ref().unwrap().expose(), "p,1");
    assert_eq!(user.target_password.as_ref().unwrap().expose(), "q,\"2\"");
    assert_eq!(parsed.total_rows, 1);
}

#[test]
fn a_quoted_value_spanning_lines_keeps_later_line_numbers_right() {
    // Line 2's row runs on to line 3: its password holds a line break, which no password
    // can; the rows after it are lines 4 and 5 of the file, not rows 3 and 4.
    let csv = format!("{HEADER}a@x,\"two\r\nlines\",b@y,q,\nc@x,p,d@y,q,\n,p,e@y,q,\n");
    let parsed = parse(&csv);
    assert_eq!(
        messages(&parsed),
        vec![
            "line 2, column source_password: contains a line break, which no password can; \
             check the quotes on this row (a missing closing quote pulls the next line into \
             the value)",
            "line 5, column source_user: empty; give the user's login on the source server",
        ]
    );
    assert_eq!(parsed.users[0].line, 4);
}

#[test]
fn a_quoted_route_or_user_name_spanning_lines_is_read_as_one_value() {
    let csv = format!("{HEADER}\"a@x\",p,b@y,q,\"ma\nin\"\nc@x,p,d@y,q,\n");
    let parsed = parse(&csv);
    assert_eq!(
        messages(&parsed),
        vec!["line 2, column route: unknown route \"ma\\nin\"; the routes are: main, hosted"]
    );
    assert_eq!(parsed.users[0].line, 4);
}

#[test]
fn passwords_keep_quotes_commas_percent_signs_and_spaces() {
    let csv = format!(
        "{HEADER}a@x,\"he said \"\"hi\"\", 100%\",b@y, sp ace ,main\nc@x,pa\"ss,d@y,%41%,main\n"
    );
    let parsed = parse(&csv);
    assert_clean(&parsed);
    let secret = |i: usize, target: bool| {
        let user = &parsed.users[i];
        let password = if target {
            &user.target_password
        } else {
            &user.source_password
        };
        password.as_ref().unwrap().expose().to_owned()
    };
    assert_eq!(secret(0, false), "he said \"hi\", 100%");
    assert_eq!(secret(0, true), " sp ace ");
    assert_eq!(secret(1, false), "pa\"ss");
    assert_eq!(secret(1, true), "%41%");
}

#[test]
fn non_ascii_user_names_are_accepted() {
    let csv = format!("{HEADER}jürgen.müller@alt.de,p,ユーザー@新しい.jp,q,\n");
    let parsed = parse(&csv);
    assert_clean(&parsed);
    assert_eq!(parsed.users[0].source_user.as_str(), "jürgen.müller@alt.de");
    assert_eq!(parsed.users[0].target_user.as_str(), "ユーザー@新しい.jp");
}

#[test]
fn header_synonyms_case_and_column_order_do_not_matter() {
    let csv = "Route,New Login,Old Login,To Password,From Password\nMAIN,b@y,a@x,q,p\n";
    let parsed = parse(csv);
    assert_clean(&parsed);
    let user = &parsed.users[0];
    assert_eq!(user.source_user.as_str(), "a@x");
    assert_eq!(user.target_user.as_str(), "b@y");
    assert_eq!(user.source_password.as_ref().unwrap().expose(), "p");
    // The route is named as configured, whatever case the file used.
    assert_eq!(user.route, "main");
    assert!(!user.route_from_default);
}

#[test]
fn blank_lines_anywhere_and_trailing_empty_lines_are_ignored() {
    let csv = format!("\n{HEADER}\na@x,p,b@y,q,\n,,,,\n\r\nc@x,p,d@y,q,\n\n\n  \n");
    let parsed = parse(&csv);
    assert_clean(&parsed);
    assert_eq!(parsed.total_rows, 2);
    assert_eq!(parsed.users[0].line, 4);
    assert_eq!(parsed.users[1].line, 7);
}

#[test]
fn spaces_around_user_and_route_names_are_trimmed() {
    let csv = format!("{HEADER} a@x ,p,\tb@y ,q, hosted \n");
    let parsed = parse(&csv);
    assert_clean(&parsed);
    assert_eq!(parsed.users[0].source_user.as_str(), "a@x");
    assert_eq!(parsed.users[0].target_user.as_str(), "b@y");
    assert_eq!(parsed.users[0].route, "hosted");
}

#[test]
fn a_route_with_master_users_needs_no_passwords() {
    let csv = format!("{HEADER}a@x,,b@y,,hosted\n");
    let parsed = parse(&csv);
    assert_clean(&parsed);
    assert!(parsed.users[0].source_password.is_none());
    assert!(parsed.users[0].target_password.is_none());
    let row = &parsed.preview().rows[0];
    assert!(!row.source_password_given && !row.target_password_given);
}

#[test]
fn a_file_of_users_only_is_enough_when_the_route_has_master_users() {
    let ctx = ImportContext::new([ImportRoute::new("hosted")
        .with_source_master_user()
        .with_target_master_user()])
    .unwrap();
    let parsed = parse_users_csv(b"source_user,target_user\na@x,b@y\n", &ctx);
    assert_clean(&parsed);
    assert_eq!(parsed.users[0].route, "hosted");
    assert!(parsed.users[0].route_from_default);
}

#[test]
fn a_file_without_a_route_column_uses_the_default_route() {
    let csv = "source_user,source_password,target_user,target_password\na@x,p,b@y,q";
    let parsed = parse(csv);
    assert_clean(&parsed);
    assert_eq!(parsed.users[0].route, "main");
}

// ---- the whole file --------------------------------------------------------------------

#[test]
fn an_empty_file_is_refused() {
    for csv in ["", "\u{FEFF}", "\n\n  \r\n", ",,,\n"] {
        let parsed = parse(csv);
        let error = only_error(&parsed);
        assert_eq!(error.problem, Problem::EmptyFile, "{csv:?}");
        assert!(error.to_string().starts_with("line 1: the file is empty"));
    }
}

#[test]
fn a_header_without_users_is_refused() {
    let parsed = parse(HEADER);
    assert_eq!(only_error(&parsed).problem, Problem::NoUsers);
    assert_eq!(only_error(&parsed).line, 2);
}

#[test]
fn a_file_without_a_header_line_is_refused() {
    let parsed = parse("a@x,p,b@y,q,main\n");
    let error = only_error(&parsed);
    assert_eq!(error.line, 1);
    assert_eq!(
        error.problem,
        Problem::NoHeader {
            first_cell: "a@x".into()
        }
    );
    assert!(error.to_string().contains("Add a header line"));
}

#[test]
fn an_unknown_column_is_an_error_on_line_one_naming_it() {
    let csv = "source_user,source_password,Department,target_user,target_password\na,b,c,d,e\n";
    let parsed = parse(csv);
    let error = only_error(&parsed);
    assert_eq!(error.line, 1);
    assert_eq!(error.column.as_deref(), Some("Department"));
    assert_eq!(
        error.to_string(),
        "line 1, column Department: unknown column \"Department\" (column 3); the columns are \
         source_user, source_password, target_user, target_password and route. Rename or \
         remove it"
    );
    assert!(parsed.users.is_empty());
}

#[test]
fn a_missing_user_column_is_named() {
    let parsed = parse("source_user,source_password,target_password\na,b,c\n");
    let error = only_error(&parsed);
    assert_eq!(
        (error.line, error.column.as_deref()),
        (1, Some("target_user"))
    );
    assert_eq!(
        error.problem,
        Problem::MissingColumn {
            column: Column::TargetUser,
            why: MissingColumnWhy::Always
        }
    );
}

#[test]
fn a_missing_password_column_is_named_when_no_route_has_a_master_user() {
    let parsed = parse_users_csv(
        b"source_user,target_user,target_password,route\na,b,c,eu\n",
        &ctx_without_default(),
    );
    let error = only_error(&parsed);
    assert_eq!(
        error.to_string(),
        "line 1, column source_password: the header has no source_password column; no route \
         has a master user for the source server, so every row needs the source password. \
         Add the column"
    );
}

#[test]
fn a_missing_route_column_is_named_when_there_are_several_routes_and_no_default() {
    let parsed = parse_users_csv(
        b"source_user,source_password,target_user,target_password\na,b,c,d\n",
        &ctx_without_default(),
    );
    let error = only_error(&parsed);
    assert_eq!(error.column.as_deref(), Some("route"));
    assert!(error
        .to_string()
        .contains("several routes (eu, us) and no default"));
}

#[test]
fn a_column_given_twice_or_without_a_name_is_refused() {
    let parsed = parse("source_user,target_user,From User,,source_password,target_password\n");
    let problems: Vec<&Problem> = parsed.errors.iter().map(|e| &e.problem).collect();
    assert_eq!(
        problems,
        vec![
            &Problem::DuplicateColumn {
                column: Column::SourceUser,
                first_position: 1,
                position: 3
            },
            &Problem::UnnamedColumn { position: 4 },
        ]
    );
}

#[test]
fn too_many_rows_are_refused_naming_the_limit() {
    let ctx = ctx().with_row_limit(3).unwrap();
    let parsed = parse_users_csv(good_file(5).as_bytes(), &ctx);
    let error = only_error(&parsed);
    assert_eq!(error.line, 5);
    assert_eq!(
        error.to_string(),
        "line 5: the file has 5 users, but one import can take at most 3; split it into \
         several files"
    );
    assert!(parsed.users.is_empty());
    assert_eq!(parsed.total_rows, 5);
}

#[test]
fn the_default_limit_is_ten_thousand_rows() {
    let parsed = parse(&good_file(DEFAULT_ROW_LIMIT));
    assert_clean(&parsed);
    let parsed = parse(&good_file(DEFAULT_ROW_LIMIT + 1));
    assert!(only_error(&parsed).to_string().contains("at most 10000"));
}

#[test]
fn a_utf16_file_is_refused_with_advice() {
    let mut bytes = vec![0xFF, 0xFE];
    for unit in HEADER.encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    let parsed = parse_users_csv(&bytes, &ctx());
    assert_eq!(only_error(&parsed).problem, Problem::Utf16);
}

#[test]
fn a_utf16_file_without_byte_order_mark_is_refused_too() {
    let bytes: Vec<u8> = HEADER.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let parsed = parse_users_csv(&bytes, &ctx());
    assert_eq!(only_error(&parsed).problem, Problem::Utf16);
}

#[test]
fn a_file_separated_by_semicolons_is_refused_with_advice() {
    let parsed = parse("source_user;source_password;target_user;target_password\na;b;c;d\n");
    let error = only_error(&parsed);
    assert_eq!(
        error.to_string(),
        "line 1: the values are separated by semicolons, not commas; save the file as \"CSV \
         UTF-8 (Comma delimited)\", or replace the separators with commas"
    );
}

#[test]
fn a_header_line_that_is_not_utf8_is_refused() {
    let parsed = parse_users_csv(b"source_user,target_user,\xE9\na,b,c\n", &ctx());
    let error = only_error(&parsed);
    assert_eq!(error.line, 1);
    assert!(matches!(error.problem, Problem::NotUtf8(_)));
}

// ---- bad rows --------------------------------------------------------------------------

#[test]
fn bytes_that_are_not_utf8_are_located_by_line_and_offset() {
    // "Jürgen" saved as Windows-1252: ü is the single byte 0xFC.
    let mut bytes = HEADER.as_bytes().to_vec();
    bytes.extend_from_slice(b"a@x,p,b@y,q,\nJ\xFCrgen@x,p,j@y,q,\n");
    let parsed = parse_users_csv(&bytes, &ctx());
    let error = only_error(&parsed);
    assert_eq!(
        (error.line, error.column.as_deref()),
        (3, Some("source_user"))
    );
    let offset = HEADER.len() + "a@x,p,b@y,q,\n".len() + 1;
    assert_eq!(
        error.to_string(),
        format!(
            "line 3, column source_user: not valid UTF-8: byte 0xFC at byte 2 of the line \
             (offset {offset} in the file). Save the file as UTF-8 (in Excel: \"CSV UTF-8 \
             (Comma delimited)\") and upload it again"
        )
    );
    assert_eq!(parsed.users.len(), 1);
}

#[test]
fn a_bad_byte_inside_a_multi_line_value_names_its_own_line() {
    let mut bytes = HEADER.as_bytes().to_vec();
    bytes.extend_from_slice(b"a@x,p,b@y,\"q\n\xE9\",\n");
    let parsed = parse_users_csv(&bytes, &ctx());
    let error = only_error(&parsed);
    assert_eq!(
        (error.line, error.column.as_deref()),
        (3, Some("target_password"))
    );
    assert!(error
        .to_string()
        .contains("byte 0xE9 at byte 1 of the line"));
}

#[test]
fn a_row_with_the_wrong_number_of_values_is_refused() {
    let csv = format!("{HEADER}a@x,p,b@y,q\nc@x,p,1,d@y,q,main\n");
    let parsed = parse(&csv);
    let errors = messages(&parsed);
    assert_eq!(
        errors,
        vec![
            "line 2: 4 values, but the header has 5 columns (source_user, source_password, \
             target_user, target_password, route); every row needs a value, possibly empty, \
             for each column",
            "line 3: 6 values, but the header has 5 columns (source_user, source_password, \
             target_user, target_password, route); put a value that contains a comma in \
             double quotes",
        ]
    );
}

#[test]
fn a_wrong_count_after_a_multi_line_value_points_at_the_quote() {
    let csv = format!("{HEADER}a@x,\"p,b@y,q,main\nc@x\",p,d@y,q,main\n");
    let parsed = parse(&csv);
    let error = only_error(&parsed);
    assert_eq!(error.line, 2);
    assert!(error.to_string().contains("run on to line 3"), "{}", error);
}

#[test]
fn empty_required_values_are_refused_with_advice() {
    let csv = format!("{HEADER},p,b@y,q,\na@x,p, ,q,\nc@x,,d@y,,main\n");
    let parsed = parse(&csv);
    assert_eq!(
        messages(&parsed),
        vec![
            "line 2, column source_user: empty; give the user's login on the source server",
            "line 3, column target_user: empty; give the user's login on the target server",
            "line 4, column source_password: empty; give the source password or use a route \
             with a master user for the source server (route \"main\" has none)",
            "line 4, column target_password: empty; give the target password or use a route \
             with a master user for the target server (route \"main\" has none)",
        ]
    );
}

#[test]
fn a_missing_password_column_is_reported_per_row_for_routes_without_master_users() {
    let csv = "source_user,target_user,route\na@x,b@y,hosted\nc@x,d@y,main\n";
    let parsed = parse(csv);
    assert_eq!(parsed.users.len(), 1);
    let problems: Vec<_> = parsed
        .errors
        .iter()
        .map(|e| (e.line, e.column.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(
        problems,
        vec![(3, "source_password"), (3, "target_password")]
    );
    assert!(parsed.errors[0]
        .to_string()
        .contains("the file has no source_password column"));
}

#[test]
fn a_duplicate_source_user_names_both_lines() {
    let csv = format!("{HEADER}alice@x,p,a1@y,q,\nbob@x,p,b@y,q,\nALICE@x,p,a2@y,q,\n");
    let parsed = parse(&csv);
    assert_eq!(
        messages(&parsed),
        vec![
            "line 2, column source_user: \"alice@x\" is also the source user on line 4; each \
             source mailbox can be imported only once (user names are compared without \
             regard to case)",
            "line 4, column source_user: \"ALICE@x\" is also the source user on line 2; each \
             source mailbox can be imported only once (user names are compared without \
             regard to case)",
        ]
    );
    assert_eq!(parsed.users.len(), 1);
    assert_eq!(parsed.users[0].source_user.as_str(), "bob@x");
}

#[test]
fn a_duplicate_target_user_names_every_other_line() {
    let csv = format!("{HEADER}a@x,p,t@y,q,\nb@x,p,T@Y,q,\nc@x,p,t@y,q,\n");
    let parsed = parse(&csv);
    assert_eq!(parsed.errors.len(), 3);
    assert!(parsed.users.is_empty());
    assert_eq!(
        parsed.errors[1].to_string(),
        "line 3, column target_user: \"T@Y\" is also the target user on lines 2 and 4; two \
         rows cannot copy into the same target mailbox (user names are compared without \
         regard to case)"
    );
}

#[test]
fn an_unknown_route_lists_the_known_ones() {
    let csv = format!("{HEADER}a@x,p,b@y,q,europe\n");
    let parsed = parse(&csv);
    assert_eq!(
        messages(&parsed),
        vec!["line 2, column route: unknown route \"europe\"; the routes are: main, hosted"]
    );
}

#[test]
fn a_route_is_required_when_there_is_no_default() {
    let csv = format!("{HEADER}a@x,p,b@y,q,\nc@x,p,d@y,q,US\n");
    let parsed = parse_users_csv(csv.as_bytes(), &ctx_without_default());
    assert_eq!(
        messages(&parsed),
        vec![
            "line 2, column route: empty; give one of the routes (eu, us), since there is no \
              default route"
        ]
    );
    assert_eq!(parsed.users[0].route, "us");
}

#[test]
fn invalid_user_names_are_refused_with_the_reason() {
    let long = format!("{}@x", "a".repeat(300));
    let csv = format!(
        "{HEADER}\"al\tice@x\",p,b@y,q,\nc@x,p,\"d e@y\",q,\n{long},p,l@y,q,\nm\u{A0}@x,p,m@y,q,\n"
    );
    let parsed = parse(&csv);
    assert_eq!(
        messages(&parsed),
        vec![
            "line 2, column source_user: \"al\\tice@x\" contains a control character (U+0009) \
             at character 3; remove it",
            "line 3, column target_user: \"d e@y\" contains a space at character 2; user names \
             cannot contain spaces",
            &format!(
                "line 4, column source_user: \"{}…\" is 302 characters long; a user name can have \
                 at most 255",
                "a".repeat(60)
            ),
            "line 5, column source_user: \"m\\u{a0}@x\" contains a non-breaking space (often \
             pasted from a web page or Word) at character 2; user names cannot contain spaces",
        ]
    );
}

#[test]
fn an_unclosed_quote_is_reported_and_later_rows_are_still_checked() {
    let csv = format!("{HEADER}a@x,\"p,b@y,q,\nc@x,p,d@y,q,\n,p,e@y,q,\n");
    let parsed = parse(&csv);
    assert_eq!(
        messages(&parsed),
        vec![
            "line 2, column source_password: the quoted value that starts here is never \
             closed; add the missing closing quote (\"). The lines from 3 on were checked as \
             if it were closed on this line",
            "line 4, column source_user: empty; give the user's login on the source server",
        ]
    );
    assert_eq!(parsed.users.len(), 1);
    assert_eq!(parsed.users[0].line, 3);
}

#[test]
fn text_after_a_closing_quote_is_refused() {
    let csv = format!("{HEADER}a@x,\"p\"x,b@y,q,\n");
    let parsed = parse(&csv);
    let error = only_error(&parsed);
    assert_eq!(
        (error.line, error.column.as_deref()),
        (2, Some("source_password"))
    );
    assert!(error.to_string().contains("write a quote as two quotes"));
}

#[test]
fn passwords_with_control_characters_are_refused() {
    let csv = format!("{HEADER}a@x,\"p\u{0}w\",b@y,q,\n");
    let parsed = parse(&csv);
    assert_eq!(
        only_error(&parsed).problem,
        Problem::PasswordControl {
            code: "U+0000".into()
        }
    );
}

#[test]
fn a_file_with_every_kind_of_bad_row_lists_each_error_and_keeps_the_good_rows() {
    let mut bytes = HEADER.as_bytes().to_vec();
    bytes.extend_from_slice(
        b"good1@x,p,good1@y,q,\n\
          ,p,e1@y,q,\n\
          e2@x,p,e2@y,,\n\
          e3@x,p,e3@y,q,mars\n\
          e4 x,p,e4@y,q,\n\
          good1@X,p,e5@y,q,\n\
          e6@x,p,good1@Y,q,\n\
          e7@x,p,e7@y\n\
          \xC0e8@x,p,e8@y,q,\n\
          good2@x,\"p,\"\"2\"\"\",good2@y,q,hosted\n\
          e9@x,\"p,e9@y,q,\n",
    );
    let parsed = parse_users_csv(&bytes, &ctx());
    let found: Vec<(u64, Option<&str>)> = parsed
        .errors
        .iter()
        .map(|e| (e.line, e.column.as_deref()))
        .collect();
    assert_eq!(
        found,
        vec![
            (2, Some("source_user")),      // duplicate of line 7
            (2, Some("target_user")),      // duplicate of line 8
            (3, Some("source_user")),      // empty
            (4, Some("target_password")),  // empty, route without master user
            (5, Some("route")),            // unknown route
            (6, Some("source_user")),      // space in the name
            (7, Some("source_user")),      // duplicate of line 2
            (8, Some("target_user")),      // duplicate of line 2
            (9, None),                     // wrong number of values
            (10, Some("source_user")),     // not UTF-8
            (12, Some("source_password")), // unclosed quote
        ],
        "{:#?}",
        messages(&parsed)
    );
    let good: Vec<&str> = parsed
        .users
        .iter()
        .map(|u| u.source_user.as_str())
        .collect();
    assert_eq!(good, vec!["good2@x"]);
    assert_eq!(parsed.total_rows, 11);
    let preview = parsed.preview();
    assert_eq!((preview.total_rows, preview.valid_rows), (11, 1));
    assert_eq!(preview.errors.len(), 11);
}

// ---- passwords stay secret -------------------------------------------------------------

const SECRETS: [&str; 4] = [
    "S3cr3t\"Quote",
    "Comma,Secret",
    "100%Sure",
    "Ünïcødé-Pässwörd",
];

fn file_with_secrets() -> String {
    let [a, b, c, d] = SECRETS.map(|s| format!("\"{}\"", s.replace('"', "\"\"")));
    format!(
        "{HEADER}a@x,{a},b@y,{b},\n\
         c@x,{c},c d@y,{d},\n\
         e@x,{a},e@y,{d},mars\n\
         f@x,{b},f@y,{c}\n\
         g@x,{c},g@y,\"{d}\n"
    )
}

#[test]
fn passwords_never_appear_in_debug_output_or_messages() {
    let parsed = parse(&file_with_secrets());
    assert!(!parsed.errors.is_empty() && !parsed.users.is_empty());
    let debug = format!("{parsed:?} {parsed:#?}");
    let shown = messages(&parsed).join("\n");
    let wire = serde_json::to_string(&parsed.preview()).unwrap();
    for secret in SECRETS {
        assert!(!debug.contains(secret), "Debug shows {secret:?}: {debug}");
        assert!(
            !shown.contains(secret),
            "a message shows {secret:?}: {shown}"
        );
        assert!(
            !wire.contains(secret),
            "the preview shows {secret:?}: {wire}"
        );
    }
    assert!(debug.contains("Password(***)"));
}

#[test]
fn the_preview_says_whether_passwords_were_given_without_giving_them() {
    let csv = format!("{HEADER}a@x,p,b@y,q,\nc@x,,d@y,,hosted\n");
    let preview = parse(&csv).preview();
    let given: Vec<(bool, bool)> = preview
        .rows
        .iter()
        .map(|r| (r.source_password_given, r.target_password_given))
        .collect();
    assert_eq!(given, vec![(true, true), (false, false)]);
}
