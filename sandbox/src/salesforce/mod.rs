pub mod soql;
