// Statements that carry a secret, each secret a distinct marker (`sec-NN`) that must appear in no
// output once redacted. Shared by the redaction unit tests and the `normalize` end-to-end test.
export const SECRET_FORMS: readonly { sql: string; secrets: readonly string[] }[] = [
  { sql: "CREATE USER 'u'@'%' IDENTIFIED BY 'sec-01'", secrets: ['sec-01'] },
  { sql: "ALTER USER u IDENTIFIED WITH caching_sha2_password BY 'sec-02'", secrets: ['sec-02'] },
  { sql: "ALTER USER u IDENTIFIED WITH mysql_native_password AS '*sec-03'", secrets: ['*sec-03'] },
  { sql: "ALTER USER u IDENTIFIED BY 'sec-04' REPLACE 'sec-05'", secrets: ['sec-04', 'sec-05'] },
  { sql: "GRANT ALL ON *.* TO u IDENTIFIED BY PASSWORD '*sec-06'", secrets: ['*sec-06'] },
  { sql: "SET PASSWORD FOR 'bob'@'%' = 'sec-07'", secrets: ['sec-07'] },
  { sql: "SET PASSWORD = PASSWORD('sec-08')", secrets: ['sec-08'] },
  { sql: "SELECT audit_log_encryption_password_set('sec-09')", secrets: ['sec-09'] },
  {
    sql: "CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (USER 'remote', PASSWORD 'sec-10')",
    secrets: ['sec-10'],
  },
  { sql: "CHANGE MASTER TO MASTER_USER='repl', MASTER_PASSWORD='sec-11'", secrets: ['sec-11'] },
  { sql: "CHANGE REPLICATION SOURCE TO SOURCE_USER='repl', SOURCE_PASSWORD='sec-12'", secrets: ['sec-12'] },
  { sql: "START REPLICA USER='repl' PASSWORD='sec-13'", secrets: ['sec-13'] },
  { sql: "UPDATE mysql.user SET authentication_string='sec-14' WHERE user='root'", secrets: ['sec-14'] },
  {
    sql: "INSERT INTO mysql.user (Host, User, authentication_string) VALUES ('%', 'x', 'sec-15')",
    secrets: ['sec-15'],
  },
  { sql: "UPDATE `mysql`.`user` SET plugin='mysql_native_password', Password='sec-16'", secrets: ['sec-16'] },
  { sql: "UPDATE user SET authentication_string = 'sec-17' WHERE User = 'app'", secrets: ['sec-17'] },
  {
    sql: "REPLACE INTO mysql.servers VALUES ('s', 'h', 'db', 'u', 'sec-18', 3306, '', 'mysql', '')",
    secrets: ['sec-18'],
  },
  { sql: "UPDATE mysql.slave_master_info SET User_password = 'sec-19'", secrets: ['sec-19'] },
  { sql: "SET @k = 'sec-20'", secrets: ['sec-20'] },
  { sql: "SET @a := 'sec-21', @b = 42, @`c` = X'5345432d3232'", secrets: ['sec-21', "X'5345432d3232'"] },
  {
    sql: "SET @key = CONCAT('sec-23', 'sec-24'); SELECT AES_ENCRYPT(doc, @key) FROM t",
    secrets: ['sec-23', 'sec-24'],
  },
  { sql: "SELECT @p := 'sec-25' FROM dual", secrets: ['sec-25'] },
  { sql: "SELECT AES_ENCRYPT('card 4111', 'sec-26')", secrets: ['card 4111', 'sec-26'] },
  { sql: "SELECT aes_decrypt(col, UNHEX(SHA2('sec-27', 512))) FROM t", secrets: ['sec-27'] },
  {
    sql: "SELECT asymmetric_encrypt('RSA', 'sec-28', '-----BEGIN PUBLIC KEY-----sec-29')",
    secrets: ['sec-28', 'sec-29'],
  },
  {
    sql: "SELECT asymmetric_sign('RSA', digest, '-----BEGIN PRIVATE KEY-----sec-30', 'SHA256')",
    secrets: ['sec-30'],
  },
  {
    sql: "SELECT create_asymmetric_pub_key('RSA', '-----BEGIN PRIVATE KEY-----sec-31')",
    secrets: ['sec-31'],
  },
  { sql: "SELECT keyring_key_store('k1', 'AES', 'sec-32')", secrets: ['sec-32'] },
  { sql: "SELECT * FROM accounts WHERE pin = MD5('sec-33')", secrets: ['sec-33'] },
  {
    sql: "SELECT DES_ENCRYPT('sec-34', 'sec-35'), ENCODE('x', 'sec-36')",
    secrets: ['sec-34', 'sec-35', 'sec-36'],
  },
  { sql: "GRANT SELECT ON db.* TO 'u'@'%' IDENTIFIED BY 'sec-37' WITH GRANT OPTION", secrets: ['sec-37'] },
];
