//! One test per validation rule, each with the exact `file:line:column: message` lines.

use super::*;

#[test]
fn base_is_valid() {
    assert_eq!(base_problems(""), Vec::<String>::new());
}

#[test]
fn syntax_error() {
    assert_eq!(
        problems(&[("t.toml", "[destination.beijing\nname = 1\n")]),
        ["t.toml:1:21: invalid TOML: unclosed table, expected `]`"]
    );
}

#[test]
fn unknown_sections_and_keys() {
    assert_eq!(
        base_problems("colour = \"red\"\n[hotline]\nx = 1\n"),
        [
            "t.toml:9:1: unknown key `colour` in [trunk.beijing.gateway.a], expected one of: \
             address, transport, priority, weight, channels, schedule",
            "t.toml:10:1: unknown section `hotline`, expected one of: destination, trunk, \
             keys, catalogue, category",
        ]
    );
}

#[test]
fn wrong_types_and_ranges() {
    let text = with_base("priority = \"1\"\nweight = 0\n").replace(
        "area_code = \"010\"",
        "area_code = \"10\"\nring_timeout_secs = 30.5",
    );
    assert_eq!(
        problems(&[("t.toml", &text)]),
        [
            "t.toml:4:13: destination.beijing.area_code must be 0 followed by 2 or 3 digits, \
             such as \"010\" or \"0311\", found \"10\"",
            "t.toml:5:21: destination.beijing.ring_timeout_secs must be an integer, found float",
            "t.toml:10:12: trunk.beijing.gateway.a.priority must be an integer, found string",
            "t.toml:11:10: trunk.beijing.gateway.a.weight must be between 1 and 1000, found 0",
        ]
    );
}

#[test]
fn missing_required_keys() {
    let text = "[destination.beijing]\nname = \"北京市热线\"\n\n[trunk.beijing]\n";
    assert_eq!(
        problems(&[("t.toml", text)]),
        [
            "t.toml:1:1: [destination.beijing] is missing the required key `name_en`",
            "t.toml:1:1: [destination.beijing] is missing the required key `area_code`",
            "t.toml:1:1: [destination.beijing] is missing the required key `trunk`",
            "t.toml:4:1: [trunk.beijing] is missing the required key `gateway`",
        ]
    );
}

#[test]
fn invalid_ids() {
    assert_eq!(
        base_problems("[trunk.Tianjin.gateway.a]\naddress = \"127.0.0.1:5082\"\n"),
        [
            "t.toml:9:8: trunk id \"Tianjin\" is invalid, expected at most 32 lowercase letters, \
             digits, - or _, starting with a letter or digit"
        ]
    );
}

#[test]
fn unknown_trunk() {
    let text = with_base("").replace("trunk = \"beijing\"", "trunk = \"bejing\"");
    assert_eq!(
        problems(&[("t.toml", &text)]),
        ["t.toml:5:9: destination.beijing.trunk refers to unknown trunk `bejing`"]
    );
}

#[test]
fn unknown_destination_in_key_map() {
    assert_eq!(
        base_problems("[keys.map]\n\"*1\" = \"beijing\"\n\"*2\" = \"tianjin\"\n"),
        ["t.toml:11:8: keys.map.\"*2\" refers to unknown destination `tianjin`"]
    );
}

#[test]
fn unknown_category() {
    let text = with_base("[catalogue]\nversion = \"1\"\n[category.housing]\nname = \"住房\"\nname_en = \"Housing\"\n")
        .replace("trunk = \"beijing\"", "trunk = \"beijing\"\naccepts = { housing = \"\", parking = \"\" }");
    assert_eq!(
        problems(&[("t.toml", &text)]),
        ["t.toml:6:27: destination.beijing.accepts.parking refers to unknown category `parking`"]
    );
}

#[test]
fn accepts_and_rejects_overlap() {
    let text = with_base("[catalogue]\nversion = \"1\"\n[category.housing]\nname = \"住房\"\nname_en = \"Housing\"\n")
        .replace("trunk = \"beijing\"", "trunk = \"beijing\"\naccepts = { housing = \"\" }\nrejects = { housing = \"\" }");
    assert_eq!(
        problems(&[("t.toml", &text)]),
        [
            "t.toml:7:13: destination.beijing: category `housing` is listed in both accepts and rejects"
        ]
    );
}

#[test]
fn duplicate_ids_across_files() {
    let base = with_base("[category.housing]\nname = \"住房\"\nname_en = \"Housing\"\n");
    let versioned = format!("{base}[catalogue]\nversion = \"1\"\n");
    assert_eq!(
        problems(&[("a.toml", &versioned), ("b.toml", &versioned)]),
        [
            "b.toml:1:1: destination `beijing` is already defined at a.toml:1:1",
            "b.toml:7:8: trunk `beijing` is already defined at a.toml:7:8",
            "b.toml:9:1: category `housing` is already defined at a.toml:9:1",
            "b.toml:13:11: catalogue.version is already set at a.toml:13:11, set it in one file only",
        ]
    );
}

#[test]
fn duplicate_key_across_files() {
    let keys = "[keys]\nterminator = \"#\"\n[keys.map]\n\"*1\" = \"beijing\"\n";
    assert_eq!(
        problems(&[("a.toml", &with_base(keys)), ("b.toml", keys)]),
        [
            "b.toml:2:14: keys.terminator is already set at a.toml:10:14, set it in one file only",
            "b.toml:4:1: key sequence \"*1\" is already bound at a.toml:12:1",
        ]
    );
}

#[test]
fn ambiguous_keys_without_terminator() {
    let keys = "[keys.map]\n\"*3\" = \"beijing\"\n\"*301\" = \"beijing\"\n\"*1\" = \"beijing\"\n\
                \"*11\" = \"beijing\"\n";
    assert_eq!(
        base_problems(keys),
        [
            "t.toml:11:1: key sequence \"*301\" is ambiguous: \"*3\" (at t.toml:10:1) is a prefix \
             of it and would complete first; set keys.terminator or change one of them",
            "t.toml:13:1: key sequence \"*11\" is ambiguous: \"*1\" (at t.toml:12:1) is a prefix \
             of it and would complete first; set keys.terminator or change one of them",
        ]
    );
}

#[test]
fn prefix_keys_with_terminator() {
    let keys =
        "[keys]\nterminator = \"#\"\n[keys.map]\n\"*3\" = \"beijing\"\n\"*301\" = \"beijing\"\n";
    assert_eq!(base_problems(keys), Vec::<String>::new());
}

#[test]
fn key_containing_terminator() {
    let keys =
        "[keys]\nterminator = \"#\"\n[keys.map]\n\"*1#\" = \"beijing\"\n\"*1E\" = \"beijing\"\n";
    assert_eq!(
        base_problems(keys),
        [
            "t.toml:12:1: key sequence \"*1#\" contains the terminator '#', so it could never be \
             keyed",
            "t.toml:13:1: keys.map.\"*1E\": key sequence \"*1E\" contains 'E', expected 0-9 * # A-D",
        ]
    );
}

#[test]
fn bad_key_settings() {
    assert_eq!(
        base_problems("[keys]\nterminator = \"##\"\ninter_digit_timeout_ms = 50\n"),
        [
            "t.toml:10:14: keys.terminator: terminator \"##\" must be one key of 0-9 * # A-D",
            "t.toml:11:26: keys.inter_digit_timeout_ms must be between 500 and 30000, found 50",
        ]
    );
}

#[test]
fn duplicate_number_across_destinations() {
    let tianjin = "[destination.tianjin]\nname = \"天津市热线\"\nname_en = \"Tianjin\"\n\
                   area_code = \"022\"\ntrunk = \"beijing\"\nnumbers = [\"+86 10 12345\"]\n\
                   names = [\"Beijing\"]\n";
    let text = with_base(tianjin).replace(
        "trunk = \"beijing\"\n\n",
        "trunk = \"beijing\"\nnumbers = [\"010-12345\"]\n\n",
    );
    assert_eq!(
        problems(&[("t.toml", &text)]),
        [
            "t.toml:15:12: number \"+86 10 12345\" already refers to destination `beijing` \
             (numbers \"010-12345\" at t.toml:6:12)",
            "t.toml:16:10: name \"Beijing\" already refers to destination `beijing` \
             (id \"beijing\" at t.toml:1:1)",
        ]
    );
}

#[test]
fn bad_aliases() {
    let text = with_base("").replace(
        "trunk = \"beijing\"\n\n",
        "trunk = \"beijing\"\nnumbers = [\"010-12345x\"]\nsip_users = [\"01012345\", \"bei jing\"]\n\n",
    );
    assert_eq!(
        problems(&[("t.toml", &text)]),
        [
            "t.toml:6:12: destination.beijing.numbers[0]: \"010-12345x\" contains 'x', expected \
             digits, a leading + and separators - . ( )",
            "t.toml:7:14: destination.beijing.sip_users[0] \"01012345\" is a telephone number, \
             list it in numbers so that tel: URIs and other ways of writing it match too",
            "t.toml:7:26: destination.beijing.sip_users[1] \"bei jing\" contains ' ', expected \
             letters, digits and - _ . ! ~ * ' ( ) +",
        ]
    );
}

#[test]
fn gateway_without_address() {
    assert_eq!(
        problems(&[(
            "t.toml",
            "[trunk.beijing.gateway.a]\nweight = 2\n[trunk.tianjin.gateway]\n"
        )]),
        [
            "t.toml:1:1: [trunk.beijing.gateway.a] is missing the required key `address`",
            "t.toml:3:1: trunk.tianjin.gateway has no gateways, add at least one \
             [trunk.tianjin.gateway.<name>]",
        ]
    );
}

#[test]
fn invalid_gateway_addresses() {
    let text = "[trunk.a.gateway.one]\naddress = \"sip:12345@127.0.0.1\"\n\
                [trunk.a.gateway.two]\naddress = \"127.0.0.1:70000\"\n\
                [trunk.a.gateway.three]\naddress = \"sip:gw.example.net;transport=tcp\"\n\
                transport = \"udp\"\n";
    assert_eq!(
        problems(&[("t.toml", text)]),
        [
            "t.toml:2:11: trunk.a.gateway.one.address \"sip:12345@127.0.0.1\" is not a usable \
             gateway address: a user part is not allowed, the engine writes the hotline's number",
            "t.toml:4:11: trunk.a.gateway.two.address \"127.0.0.1:70000\" is not a usable gateway \
             address: invalid port \"70000\"",
            "t.toml:7:13: trunk.a.gateway.three.transport is \"udp\" but the address has \
             ;transport=tcp",
        ]
    );
}

#[test]
fn user_trunk_needs_user() {
    let text = with_base("[trunk.beijing]\nnumbers = \"user\"\n");
    assert_eq!(
        problems(&[("t.toml", &text)]),
        [
            "t.toml:1:1: [destination.beijing] is missing `user`, which trunk `beijing` needs \
             because its numbers = \"user\""
        ]
    );
}

#[test]
fn trunk_choices_and_headers() {
    let text = "[trunk.beijing.gateway.a]\naddress = \"127.0.0.1:5081\"\n[trunk.beijing]\n\
                numbers = \"E164\"\nidentity = \"pai-only\"\n\
                context = { headers = { \"History-Info\" = \"matter\", \"X-Matter\" = \"topic\" } }\n";
    assert_eq!(
        problems(&[("t.toml", text)]),
        [
            "t.toml:4:11: trunk.beijing.numbers must be one of \"e164\", \"national\", \"user\", \
             found \"E164\"",
            "t.toml:5:12: trunk.beijing.identity must be one of \"pai\", \"from\", \"anonymous\", \
             found \"pai-only\"",
            "t.toml:6:25: trunk.beijing.context.headers.History-Info: History-Info is a header the \
             engine writes itself, choose another name such as X-History-Info",
            "t.toml:6:65: trunk.beijing.context.headers.X-Matter must be one of \"matter\", \
             \"work_order\", \"agent\", \"origin\", \"caller\", found \"topic\"",
        ]
    );
}

#[test]
fn credentials_variable_unset() {
    let auth = "[trunk.beijing.auth]\nusername = \"hebei\"\n\
                password_env = \"HOTLINE_B2BUA_TEST_UNSET_PASSWORD\"\n";
    assert_eq!(
        base_problems(auth),
        [
            "t.toml:11:16: trunk.beijing.auth.password_env names the environment variable \
             HOTLINE_B2BUA_TEST_UNSET_PASSWORD, which is not set; set it to the trunk password \
             before starting the engine"
        ]
    );
}

#[test]
fn credentials_variable_set() {
    // PATH is set wherever cargo runs tests.
    let auth = "[trunk.beijing.auth]\nusername = \"hebei\"\npassword_env = \"PATH\"\n";
    let text = with_base(auth);
    let plan = Plan::from_sources(&[("t.toml", &text)]).unwrap();
    let credentials = plan.trunk("beijing").unwrap().credentials.clone().unwrap();
    assert_eq!(credentials.username, "hebei");
    assert_eq!(credentials.password_env, "PATH");
    assert!(credentials.password().is_some());
}

#[test]
fn credentials_secret_in_file() {
    let auth = "[trunk.beijing.auth]\npassword_env = \"s3cr3t!\"\n";
    assert_eq!(
        base_problems(auth),
        [
            "t.toml:9:1: [trunk.beijing.auth] is missing the required key `username`",
            "t.toml:10:16: trunk.beijing.auth.password_env must be the name of an environment \
             variable (letters, digits and _), never the password itself",
        ]
    );
}

#[test]
fn health_check_timeout_within_interval() {
    let check = "[trunk.beijing.health_check]\ninterval_secs = 2\ntimeout_ms = 5000\n\
                 failures_to_down = 0\n";
    assert_eq!(
        base_problems(check),
        [
            "t.toml:12:20: trunk.beijing.health_check.failures_to_down must be between 1 and 100, \
          found 0"
        ]
    );
    let check = "[trunk.beijing.health_check]\ninterval_secs = 2\ntimeout_ms = 5000\n";
    assert_eq!(
        base_problems(check),
        [
            "t.toml:11:14: trunk.beijing.health_check.timeout_ms (5000) must not be longer than \
          interval_secs (2 s), or probes of one gateway would overlap"
        ]
    );
}

#[test]
fn bad_time_rules() {
    let rules = "[[trunk.beijing.gateway.a.schedule]]\ndays = [\"monday\"]\nhours = \"8:00-20:00\"\n\
                 [[trunk.beijing.gateway.a.schedule]]\ndates = [\"2025-02-30\"]\n\
                 [[trunk.beijing.gateway.a.schedule]]\n\
                 [[trunk.beijing.gateway.a.schedule]]\nhours = \"09:00-09:00\"\n";
    assert_eq!(
        base_problems(rules),
        [
            "t.toml:10:9: trunk.beijing.gateway.a.schedule[0].days[0]: \"monday\" is not a \
             weekday or weekday range such as \"mon\" or \"mon-fri\"",
            "t.toml:11:9: trunk.beijing.gateway.a.schedule[0].hours: \"8:00-20:00\" is not an \
             hour range such as \"08:00-20:00\"",
            "t.toml:13:10: trunk.beijing.gateway.a.schedule[1].dates[0]: \"2025-02-30\" is not \
             a date such as \"2025-01-01\"",
            "t.toml:14:1: trunk.beijing.gateway.a.schedule[2] sets none of days, hours and \
             dates, so it would always match",
            "t.toml:16:9: trunk.beijing.gateway.a.schedule[3].hours: hour range \"09:00-09:00\" \
             is empty because it starts where it ends",
        ]
    );
}

#[test]
fn catalogue_without_version() {
    let text =
        with_base("[category.housing]\nname = \"住房\"\nname_en = \"Housing\"\n[catalogue]\n");
    assert_eq!(
        problems(&[("t.toml", &text)]),
        [
            "t.toml:9:1: category.housing: the catalogue has no version, add [catalogue] \
             version = \"YYYY-MM\" to one file",
            "t.toml:12:1: [catalogue] is missing the required key `version`",
        ]
    );
}

#[test]
fn every_problem_at_once_in_order() {
    let first = "[destination.a]\nname = 1\n";
    let second = "[keys.map]\n\"*1\" = \"nowhere\"\n[bogus]\n";
    let lines = problems(&[("1.toml", first), ("2.toml", second)]);
    assert_eq!(
        lines,
        [
            "1.toml:1:1: [destination.a] is missing the required key `name_en`",
            "1.toml:1:1: [destination.a] is missing the required key `area_code`",
            "1.toml:1:1: [destination.a] is missing the required key `trunk`",
            "1.toml:2:8: destination.a.name must be a string, found integer",
            "2.toml:2:8: keys.map.\"*1\" refers to unknown destination `nowhere`",
            "2.toml:3:1: unknown section `bogus`, expected one of: destination, trunk, keys, \
             catalogue, category",
        ]
    );
}

#[test]
fn load_reports_missing_paths() {
    let missing = PathBuf::from("/nonexistent/dialplans");
    let problems = Plan::load(&[missing]).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].file, "/nonexistent/dialplans");
    assert!(
        problems[0].message.starts_with("failed to read: "),
        "{}",
        problems[0].message
    );
}

#[test]
fn empty_plan_refuses_everything() {
    let plan = Plan::from_sources::<&str, &str>(&[]).unwrap();
    assert_eq!(plan.match_keys("*1"), KeyMatch::NoMatch);
    assert_eq!(plan.resolve_refer_to("tel:010-12345"), None);
    assert_eq!(plan.catalogue_version(), None);
}
