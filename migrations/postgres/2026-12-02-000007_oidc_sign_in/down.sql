DROP TABLE sign_in_domains;
DROP TABLE oidc_logins;
